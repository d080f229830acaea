"""One model replica: load the model once, then score the shards it is fed. Runs inside a Ray actor.

Errors are data: an item that makes the model raise is isolated by bisecting the batch and becomes an error row;
the rest of the shard scores normally.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from actors import get_kind
from actors.base import ActorContext, InferenceSettings, ScoreOutcome, ScoreRequest
from orchestrator.schema import results_table
from orchestrator.spec import ModelSpec


@dataclass(frozen=True)
class ShardTask:
    key: str
    model: str
    suite: str
    start: int
    stop: int


@dataclass
class ShardResult:
    key: str
    table: pa.Table
    seconds: float
    n_errors: int


def shard_requests(items: pa.Table) -> list[ScoreRequest]:
    """One pointwise request per (item, candidate)."""
    reqs = []
    for row in items.select(["item_id", "prompt", "candidates", "context"]).to_pylist():
        for c, response in enumerate(row["candidates"]):
            reqs.append(ScoreRequest(row["item_id"], c, row["prompt"], response, row["context"]))
    return reqs


def result_rows(
    task: ShardTask,
    items: pa.Table,
    outcomes: list[ScoreOutcome],
    settings: InferenceSettings,
    settings_hash: str,
    seed: int,
) -> pa.Table:
    subsets = {r["item_id"]: r["subset"] for r in items.select(["item_id", "subset"]).to_pylist()}
    reqs = shard_requests(items)
    common = {"unit_key": task.key, "model": task.model, "suite": task.suite, "settings_hash": settings_hash,
              "seed": seed, **asdict(settings)}
    rows = []
    for req, out in zip(reqs, outcomes, strict=True):
        rows.append({
            **common,
            "subset": subsets[req.item_id],
            "item_id": req.item_id,
            "candidate": req.candidate,
            "score": out.score,
            "scores": out.scores,
            "n_tokens": out.n_tokens,
            "truncated": out.truncated,
            "error": out.error,
        })
    return results_table(rows)


def error_table(task: ShardTask, items: pa.Table, spec: ModelSpec, seed: int, message: str) -> pa.Table:
    """Error rows for every request of a shard that could not be scored at all (e.g. retries exhausted)."""
    n = len(shard_requests(items))
    return result_rows(task, items, [ScoreOutcome(error=message)] * n, InferenceSettings(backend="unknown"),
                       spec.settings_hash, seed)


def _torch_device(gpu_ids: tuple[int, ...]) -> str:
    if not gpu_ids:
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelWorker:
    def __init__(self, spec: ModelSpec, seed: int):
        gpu_ids: tuple[int, ...] = ()
        try:
            import ray

            if ray.is_initialized():
                gpu_ids = tuple(int(g) for g in ray.get_gpu_ids())
        except ImportError:
            pass
        self.spec = spec
        self.seed = seed
        threads = max(1, int(spec.resources.num_cpus))
        self.ctx = ActorContext(seed=seed, threads=threads, gpu_ids=gpu_ids, device=_torch_device(gpu_ids))
        t0 = time.perf_counter()
        self.model = get_kind(spec.kind)(spec.config, self.ctx, spec.name)
        self.load_seconds = time.perf_counter() - t0
        self.settings = self.model.settings()

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.spec.name,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "gpu_ids": list(self.ctx.gpu_ids),
            "threads": self.ctx.threads,
            "device": self.ctx.device,
            "load_seconds": self.load_seconds,
            "settings": asdict(self.settings),
        }

    def score_shard(self, task: ShardTask, items: pa.Table) -> ShardResult:
        t0 = time.perf_counter()
        shard = items.slice(task.start, task.stop - task.start)
        outcomes = self._score_isolating(shard_requests(shard))
        table = result_rows(task, shard, outcomes, self.settings, self.spec.settings_hash, self.seed)
        n_errors = sum(o.error is not None for o in outcomes)
        return ShardResult(task.key, table, time.perf_counter() - t0, n_errors)

    def _score_isolating(self, reqs: list[ScoreRequest]) -> list[ScoreOutcome]:
        if not reqs:
            return []
        try:
            outcomes = self.model.score(reqs)
            if len(outcomes) != len(reqs):
                raise RuntimeError(f"{self.spec.kind} returned {len(outcomes)} outcomes for {len(reqs)} requests")
            return outcomes
        except Exception as e:  # noqa: BLE001 -- any model failure becomes data, never a dead sweep
            if len(reqs) == 1:
                return [ScoreOutcome(error=f"{type(e).__name__}: {e}"[:2000])]
            mid = len(reqs) // 2
            return self._score_isolating(reqs[:mid]) + self._score_isolating(reqs[mid:])
