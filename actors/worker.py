"""One model replica: load the model once, then score the shards it is fed. Runs inside a Ray actor.

Errors are data: an item that makes the model raise is isolated by bisecting the batch and becomes an error row;
the rest of the shard scores normally. A dead engine is not an item's fault: it fails the whole unit
(`EngineFailure`), or, where the engine vanished without a word, the replica exits; either way the scheduler
replaces the replica and retries the unit (rmorch.actors.engine_health).

Nothing is scored twice: requests with the same cache key (`ModelKind.cache_key`, a hash of what the model is
shown) are scored once per replica -- duplicates within a shard, across suites and permutations -- and outcomes the
driver already has (`known`, from earlier runs in the store: rmorch.orchestrator.plan.score_cache) are reused. Reused rows are
marked `cached`.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa

from rmorch.actors import get_kind
from rmorch.actors.base import (
    ActorContext,
    CompareRequest,
    InferenceSettings,
    Presentation,
    Request,
    ScoreOutcome,
    ScoreRequest,
)
from rmorch.actors.engine_health import (
    EXIT_ENGINE_FAULT,
    EngineFailure,
    Watchdog,
    descendant_pids,
    engine_processes,
    is_engine_failure,
    kill_descendants,
)
from rmorch.core.errors import UserError
from rmorch.core.model_spec import ModelSpec
from rmorch.core.permutations import item_orders
from rmorch.core.schema import results_table

MEMO_ENTRIES = 200_000  # outcomes a replica remembers for reuse (then it starts afresh)


@dataclass(frozen=True)
class ShardTask:
    """Rows [start, stop) of a suite's item table, shown in the item orders of `permutation` (comparing kinds)."""

    key: str
    model: str
    suite: str
    start: int
    stop: int
    permutation: int = 0
    rated_subsets: tuple[str, ...] = ()  # subsets the suite always has rated (never compared)
    seed: int = 0
    # only these of the unit's requests, by position (the error rows of its earlier result, redone); None: all
    requests: tuple[int, ...] | None = None
    identity: str | None = None  # the identity of the model's results, written into every row (rmorch.core.schema)
    timeout_s: float | None = None  # the replica exits if scoring takes longer (rmorch.actors.engine_health)


@dataclass
class ShardResult:
    key: str
    table: pa.Table
    seconds: float
    n_errors: int
    engine_starts: int = 0  # engines this replica has started so far (must stay 1 for engine-backed kinds)


@dataclass(frozen=True)
class LoadFailure:
    """A replica's model could not load (`ModelWorker.ready` / `reload` return it): the driver tells it from a dead
    process by its type, and reports `message` as why the model did not run."""

    message: str

    @classmethod
    def of(cls, e: Exception) -> LoadFailure:
        """A UserError's own message; any other exception with its type's name in front."""
        return cls(str(e) if isinstance(e, UserError) else f"{type(e).__name__}: {e}"[:1000])


POINTWISE = Presentation()  # one request per candidate


def shard_requests(items: pa.Table, presentation: Presentation = POINTWISE,
                   task: ShardTask | None = None) -> list[Request]:
    """The requests of one unit: per item, one pointwise request per candidate (permutation 0 only), or the
    comparison in the item's order number `task.permutation` (items with fewer orders have none in this unit); only
    those at the positions `task.requests`, when given."""
    p = task.permutation if task else 0
    rated = set(task.rated_subsets) if task else set()
    seed = task.seed if task else 0
    reqs: list[Request] = []
    for row in items.select(["suite", "subset", "item_id", "prompt", "candidates", "context"]).to_pylist():
        cands = row["candidates"]
        orders = item_orders(presentation.protocol, presentation.permutations, len(cands), row["subset"] in rated,
                             seed, row["suite"], row["item_id"])
        if orders is None:
            if p == 0:
                reqs.extend(ScoreRequest(row["item_id"], c, row["prompt"], r, row["context"], row["subset"])
                            for c, r in enumerate(cands))
        elif p < len(orders):
            order = orders[p]
            reqs.append(CompareRequest(row["item_id"], order, p, row["prompt"], tuple(cands[i] for i in order),
                                       row["context"], row["subset"]))
    if task is not None and task.requests is not None:
        reqs = [reqs[i] for i in task.requests]
    return reqs


def result_rows(
    task: ShardTask,
    items: pa.Table,
    reqs: list[Request],
    outcomes: list[ScoreOutcome],
    settings: InferenceSettings,
    settings_hash: str,
    keys: list[str | None] | None = None,
    cached: list[bool] | None = None,
) -> pa.Table:
    subsets = {r["item_id"]: r["subset"] for r in items.select(["item_id", "subset"]).to_pylist()}
    common = {"unit_key": task.key, "model": task.model, "suite": task.suite, "settings_hash": settings_hash,
              "identity": task.identity, "seed": task.seed, **asdict(settings)}
    rows = []
    keys = keys or [None] * len(reqs)
    cached = cached or [False] * len(reqs)
    for req, out, key, reused in zip(reqs, outcomes, keys, cached, strict=True):
        row = {
            **common,
            "content_key": key,
            "cached": reused,
            "subset": subsets[req.item_id],
            "item_id": req.item_id,
            "score": out.score,
            "scores": out.scores,
            "raw_output": out.raw_output,
            "parsed": out.parsed,
            "n_tokens": out.n_tokens,
            "truncated": out.truncated,
            "error": out.error,
        }
        if isinstance(req, CompareRequest):
            row["order"] = list(req.order)
            row["permutation"] = req.permutation
            if out.choice is not None and out.error is None:
                row["verdict"] = req.order[out.choice]
            if out.probs is not None and out.error is None:  # per presented position -> per candidate
                row["probs"] = [out.probs[req.order.index(c)] for c in range(len(req.order))]
        else:
            row["candidate"] = req.candidate
            row["probs"] = out.probs if out.error is None else None
        rows.append(row)
    return results_table(rows)


def error_table(task: ShardTask, items: pa.Table, spec: ModelSpec, message: str) -> pa.Table:
    """Error rows for every request of a shard that could not be scored at all (e.g. retries exhausted)."""
    reqs = shard_requests(items, get_kind(spec.kind).presentation(spec.config), task)
    return result_rows(task, items, reqs, [ScoreOutcome(error=message)] * len(reqs),
                       InferenceSettings(backend="unknown"), spec.settings_hash)


def _engine_starts() -> int:
    """Inference engines (vLLM) this replica's process has started: must stay 1 however many shards it serves."""
    engines = sys.modules.get("rmorch.actors.backends.vllm_engine")
    return engines.engine_starts() if engines else 0


def _current_placement_group() -> dict[str, Any] | None:
    """The placement group this replica runs in (tensor-parallel replicas), as {id, strategy, bundles}."""
    try:
        import ray
        from ray.util import get_current_placement_group, placement_group_table
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    pg = get_current_placement_group()
    if pg is None:
        return None
    table = placement_group_table(pg)
    return {"id": pg.id.hex(), "strategy": table.get("strategy"), "bundles": list(table.get("bundles", {}).values()),
            "nodes": sorted(set(table.get("bundles_to_node_id", {}).values()))}


def _torch_device(gpu_ids: tuple[int, ...]) -> str:
    if not gpu_ids:
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _free_device_memory() -> None:
    """Return freed tensors' memory to the device (after a model is dropped, before the next one loads)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class ModelWorker:
    """A replica: one model loaded in this process at a time. `reload` swaps in another model of the same shape
    (the scheduler's process reuse, for kinds whose `reusable_process` says dropping a model frees it)."""

    def __init__(self, spec: ModelSpec, seed: int, keep_load_failure: bool = False, watchdog: bool = False):
        """Load `spec`. With `keep_load_failure` (the scheduler's replicas) an exception while loading is kept as
        `load_failure`, which `ready()` returns, instead of raised. With `watchdog` (the scheduler's replicas) the
        process kills its engine and exits when an engine process its model started dies or a unit passes its
        `timeout_s` (rmorch.actors.engine_health): the scheduler then replaces it, instead of waiting on an engine
        that will never answer."""
        self.process_started_at = time.time()
        self.models_loaded = 0  # models this process has loaded (> 1: it was reused)
        self.load_failure: LoadFailure | None = None
        self.watchdog = watchdog
        self.watch: Watchdog | None = None
        try:
            self._load(spec, seed)
        except Exception as e:
            if not keep_load_failure:
                raise
            self.load_failure = LoadFailure.of(e)

    def _load(self, spec: ModelSpec, seed: int) -> None:
        self.load_started_at = time.time()
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
        self.kind = get_kind(spec.kind)
        before = descendant_pids()
        self.model = self.kind(spec.config, self.ctx, spec.name)
        if self.watchdog:
            self.watch = Watchdog(engine_processes(before), self._engine_fault, f"model {spec.name}")
        self.memo: dict[str, ScoreOutcome] = {}  # cache key -> outcome this replica computed
        self.load_seconds = time.perf_counter() - t0
        self.settings = self.model.settings()
        self.presentation = self.kind.presentation(spec.config)
        self.models_loaded += 1

    def ready(self) -> dict[str, Any] | LoadFailure:
        """`describe()` once the model is loaded, or why it could not load (see `__init__`)."""
        return self.load_failure or self.describe()

    def reload(self, spec: ModelSpec, seed: int) -> dict[str, Any] | LoadFailure:
        """Close the current model and load `spec` in its place, in this process; returns `describe()`, or a
        LoadFailure if `spec` raised a UserError (any other error is raised: the scheduler retries the model in a
        new process, in case this one's state was the cause).

        Only for models whose kind's `reusable_process` is true, on the same resources (the scheduler checks)."""
        if not (self.kind.reusable_process(self.spec.config) and get_kind(spec.kind).reusable_process(spec.config)):
            raise RuntimeError(f"replica of {self.spec.name} cannot load {spec.name} in the same process")
        self.close()
        self.model = None
        self.memo = {}
        _free_device_memory()
        try:
            self._load(spec, seed)
        except UserError as e:
            return LoadFailure.of(e)
        return self.describe()

    def describe(self) -> dict[str, Any]:
        pg = _current_placement_group()
        return {
            "model": self.spec.name,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "gpu_ids": list(self.ctx.gpu_ids),
            "threads": self.ctx.threads,
            "device": self.ctx.device,
            "load_started_at": self.load_started_at,
            "load_seconds": self.load_seconds,
            "process_started_at": self.process_started_at,
            "reused_process": self.models_loaded > 1,
            "settings": asdict(self.settings),
            "engine_starts": _engine_starts(),
            "engine_processes": self.watch.describe() if self.watch else [],
            "placement_group": pg,
        }

    def _engine_fault(self, why: str) -> None:
        """An engine process of the model is gone, or a unit passed its deadline: no answer is coming. Kill what is
        left of the engine and exit, so that the scheduler sees the replica die, starts a new one and retries the
        unit (`max_retries`)."""
        print(f"rmorch: {why}; the replica (pid {os.getpid()}) kills its engine and exits so that it is replaced",
              file=sys.stderr, flush=True)
        kill_descendants()
        os._exit(EXIT_ENGINE_FAULT)

    def score_shard(self, task: ShardTask, shard: pa.Table,
                    known: dict[str, ScoreOutcome] | None = None) -> ShardResult:
        """Score `shard`, the unit's items (rows [task.start, task.stop) of its suite's table, sent with the task);
        `known` outcomes (by cache key) are reused, not scored."""
        t0 = time.perf_counter()
        reqs = shard_requests(shard, self.presentation, task)
        keys = [self.kind.cache_key(self.spec.config, r) for r in reqs]
        if self.watch is not None:
            self.watch.arm(task.timeout_s)
        try:
            outcomes, cached = self._score_once(reqs, keys, known or {})
        finally:
            if self.watch is not None:
                self.watch.disarm()
        table = result_rows(task, shard, reqs, outcomes, self.settings, self.spec.settings_hash, keys, cached)
        n_errors = sum(o.error is not None for o in outcomes)
        return ShardResult(task.key, table, time.perf_counter() - t0, n_errors, _engine_starts())

    def _score_once(self, reqs: list[Request], keys: list[str | None],
                    known: dict[str, ScoreOutcome]) -> tuple[list[ScoreOutcome], list[bool]]:
        """Outcomes for `reqs`, each distinct key scored at most once by this replica; whether each was reused."""
        if len(self.memo) > MEMO_ENTRIES:
            self.memo.clear()
        todo: dict[str, int] = {}  # key -> index into `fresh` of the request that scores it
        fresh: list[Request] = []
        where: list[int | str] = []  # per request: its index into `fresh`, or the key of a reused outcome
        for r, key in zip(reqs, keys):
            if key is not None and (key in known or key in self.memo):
                where.append(key)
            elif key is not None and key in todo:
                where.append(todo[key])
            else:
                if key is not None:
                    todo[key] = len(fresh)
                where.append(len(fresh))
                fresh.append(r)
        scored = self._score_isolating(fresh)
        for key, i in todo.items():
            if scored[i].error is None:
                self.memo[key] = scored[i]
        first: set[int] = set()
        outcomes, cached = [], []
        for w in where:
            if isinstance(w, str):
                outcomes.append(known.get(w) or self.memo[w])
                cached.append(True)
            else:
                outcomes.append(scored[w])
                cached.append(w in first)
                first.add(w)
        return outcomes, cached

    def close(self) -> None:
        """Release the model before the replica is killed or reloaded (vLLM engine processes exit cleanly)."""
        if self.watch is not None:
            self.watch.stop()
            self.watch = None
        if self.model is not None:
            self.model.close()

    def _score_isolating(self, reqs: list[Request]) -> list[ScoreOutcome]:
        if not reqs:
            return []
        try:
            outcomes = self.model.score(reqs)
            if len(outcomes) != len(reqs):
                raise RuntimeError(f"{self.spec.kind} returned {len(outcomes)} outcomes for {len(reqs)} requests")
            return outcomes
        except Exception as e:  # any model failure becomes data (an engine failure: a new replica), never a dead sweep
            if is_engine_failure(e):  # every request would fail alike: the replica is replaced instead
                raise EngineFailure(f"{type(e).__name__}: {e}"[:2000]) from e
            if len(reqs) == 1:
                return [ScoreOutcome(error=f"{type(e).__name__}: {e}"[:2000])]
            mid = len(reqs) // 2
            return self._score_isolating(reqs[:mid]) + self._score_isolating(reqs[mid:])
