"""TEST AID, not a user-facing kind: `test-faulty`, the `length` baseline that can be told to misbehave.

Importing this module registers the kind (rmorch itself never imports it, so `rmorch ls` does not list it). Ray
workers import it when they unpickle the model's config, so its replicas run in real Ray worker processes. It asks
for a GPU like a real model, so replicas land on GPU nodes (logical GPUs on a test cluster).

- `delay_s`: sleep this long per call of `score` (a shard; each try of a bisected batch too, raising or not), so the
  sweep lasts long enough for a fault to land in the middle, or a failing model is slower than healthy ones;
- `raise_on`: item ids whose requests raise ValueError (a poison item: the worker bisects the batch);
- `crash_on`: item ids whose shard kills the replica's own process with SIGKILL, at most `crash_times` times in
  all (counted by files in `crash_dir`, so the count holds across replicas and nodes of one machine);
- `hang_on`: item ids whose shard blocks the replica forever (a hung engine), at most `hang_times` times in all
  (counted by files in `crash_dir`, like crashes);
- `hang_load_times`: the first this many loads in all block forever (a download or an engine start that never ends;
  counted in `crash_dir`);
- `dead_on`: item ids whose shard raises an `EngineDeadError` (what vLLM raises once its engine process is gone), at
  most `dead_times` times in all (counted in `crash_dir`);
- `flaky_on`: item ids whose requests raise ValueError while the file `flaky_while` exists (a transient fault:
  remove the file and the same spec, same unit keys, scores them);
- `log_dir`: every request scored is logged there, one line `model<TAB>item_id<TAB>candidate` (a file per process);
- `fail_load`: the model fails to load with this message, raised as `LoadRefused`, a UserError whose type name and
  traceback hold no "UserError: " (the driver must recognise a load failure by its type).
Scores are exactly the `length` baseline's, so a run with faults can be compared with a fault-free `length` run.
`test-faulty-uncached` is the same kind never cached (`cacheable = False`, like length, random and published).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field

from rmorch.actors import register_kind
from rmorch.actors.base import ActorContext, InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest
from rmorch.core.errors import UserError
from rmorch.core.model_spec import NOT_SCORING

KIND = "test-faulty"
KIND_UNCACHED = "test-faulty-uncached"


@dataclass(frozen=True)
class FaultyConfig:
    delay_s: float = field(default=0.0, metadata=NOT_SCORING)
    raise_on: tuple[str, ...] = ()
    crash_on: tuple[str, ...] = field(default=(), metadata=NOT_SCORING)
    crash_times: int = field(default=1, metadata=NOT_SCORING)
    crash_dir: str = field(default="", metadata=NOT_SCORING)
    hang_on: tuple[str, ...] = field(default=(), metadata=NOT_SCORING)
    hang_times: int = field(default=1, metadata=NOT_SCORING)
    hang_load_times: int = field(default=0, metadata=NOT_SCORING)
    dead_on: tuple[str, ...] = field(default=(), metadata=NOT_SCORING)
    dead_times: int = field(default=1, metadata=NOT_SCORING)
    flaky_on: tuple[str, ...] = field(default=(), metadata=NOT_SCORING)
    flaky_while: str = field(default="", metadata=NOT_SCORING)
    log_dir: str = field(default="", metadata=NOT_SCORING)
    fail_load: str = field(default="", metadata=NOT_SCORING)


class LoadRefused(UserError):
    """`fail_load`: a UserError subclass, so that neither its type name nor its message says "UserError"."""


class EngineDeadError(RuntimeError):
    """Named as vLLM's (vllm.v1.engine.exceptions.EngineDeadError): the worker knows it by its name."""


def crashes_so_far(crash_dir: str, what: str = "crash") -> int:
    """Faults of one sort (`crash`, `hang`, `dead`) injected so far with this `crash_dir`."""
    if not (crash_dir and os.path.isdir(crash_dir)):
        return 0
    return sum(1 for name in os.listdir(crash_dir) if name.startswith(f"{what}-"))


def _count_fault(crash_dir: str, what: str) -> None:
    os.makedirs(crash_dir, exist_ok=True)
    open(os.path.join(crash_dir, f"{what}-{os.getpid()}-{uuid.uuid4().hex}"), "w").close()


def scored_so_far(log_dir: str) -> list[tuple[str, str, int]]:
    """(model, item id, candidate) of every request scored with this `log_dir`, all processes together."""
    out = []
    for name in sorted(os.listdir(log_dir)) if os.path.isdir(log_dir) else []:
        with open(os.path.join(log_dir, name), encoding="utf-8") as f:
            for line in f:
                model, item_id, candidate = line.rstrip("\n").split("\t")
                out.append((model, item_id, int(candidate)))
    return out


@register_kind
class Faulty(ModelKind):
    """TEST AID: the length baseline with injectable delays, raising items and process crashes."""

    kind = KIND
    Config = FaultyConfig
    uses_gpu = True
    description = "TEST AID (tests/fault_kinds.py): length scores with injected faults"

    def __init__(self, config: FaultyConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        if config.hang_load_times and crashes_so_far(config.crash_dir, "hangload") < config.hang_load_times:
            _count_fault(config.crash_dir, "hangload")
            while True:  # a load that never ends
                time.sleep(3600)
        if config.fail_load:
            raise LoadRefused(config.fail_load)

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="python")

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        cfg: FaultyConfig = self.config
        ids = {r.item_id for r in requests}
        if ids & set(cfg.crash_on) and crashes_so_far(cfg.crash_dir) < cfg.crash_times:
            _count_fault(cfg.crash_dir, "crash")
            os.kill(os.getpid(), signal.SIGKILL)  # the replica's process dies mid-shard
        if ids & set(cfg.hang_on) and crashes_so_far(cfg.crash_dir, "hang") < cfg.hang_times:
            _count_fault(cfg.crash_dir, "hang")
            while True:  # a hung engine: never returns, never raises
                time.sleep(3600)
        if ids & set(cfg.dead_on) and crashes_so_far(cfg.crash_dir, "dead") < cfg.dead_times:
            _count_fault(cfg.crash_dir, "dead")
            raise EngineDeadError("EngineCore encountered an issue. See stack trace (above) for the root cause.")
        if cfg.delay_s:
            time.sleep(cfg.delay_s)
        if ids & set(cfg.raise_on):
            raise ValueError(f"poison item in batch: {sorted(ids & set(cfg.raise_on))}")
        if ids & set(cfg.flaky_on) and cfg.flaky_while and os.path.exists(cfg.flaky_while):
            raise ValueError(f"flaky item in batch: {sorted(ids & set(cfg.flaky_on))}")
        if cfg.log_dir:
            os.makedirs(cfg.log_dir, exist_ok=True)
            with open(os.path.join(cfg.log_dir, f"{os.getpid()}.log"), "a", encoding="utf-8") as f:
                f.write("".join(f"{self.name}\t{r.item_id}\t{r.candidate}\n" for r in requests))
        return [ScoreOutcome(score=float(len(r.response))) for r in requests]


@register_kind
class FaultyUncached(Faulty):
    """TEST AID: test-faulty, never cached."""

    kind = KIND_UNCACHED
    cacheable = False
    description = "TEST AID (tests/fault_kinds.py): test-faulty, never cached"
