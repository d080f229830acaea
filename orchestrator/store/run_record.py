"""`run.json`, typed: what a sweep records about itself beside its results.

One writer (the sweep: `RunRecord` at the start, `LastRun` added at the end, through `write_run`) and typed readers
(`read_run`: `rmorch status`, the report, the exporters, report.html). Every field is optional when read: stores of
older rmorch versions lack some, a merged report's record holds only what a merge means, and a damaged value is read
as absent (its field's default) so that a reader never fails on it.

A merged report (several sweeps) writes a record of its own whose `merged_from` names the sweeps it merged.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rmorch.core.errors import UserError
from rmorch.orchestrator.store.results import ResultStore

RUN_FILE = "run.json"

T = TypeVar("T")


@dataclass
class ModelRecord:
    """A model of the sweep as it ran: the settings behind its numbers and what one replica held."""

    kind: str | None = None
    settings_hash: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # ModelSpec.settings(): what can change a number
    # the identity of its results (rmorch.orchestrator.plan.provenance): the report reads rows of this identity only
    identity: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)  # what the identity covers beyond the settings
    resources: dict[str, Any] = field(default_factory=dict)  # ResourceSpec as plain data
    # the guarantee it ran under: outputs independent of batching (True), not (False), not stated (None);
    # rmorch.actors.base.Capabilities.batch_invariant
    batch_invariant: bool | None = None


@dataclass
class LastRun:
    """How the sweep's last run went (written when it ends: a record without it is of a run still going, or killed)."""

    units_planned: int = 0
    units_skipped: int = 0
    units_computed: int = 0
    units_from_cache: int = 0  # answered whole by earlier results (score_cache)
    requests_from_cache: int = 0
    errors_redone: int = 0  # error rows of earlier runs computed again in this one (rmorch.orchestrator.plan.redo)
    loads: dict[str, int] = field(default_factory=dict)  # model -> replicas that finished loading
    engine_starts: dict[str, int] = field(default_factory=dict)
    processes_started: int = 0  # replica processes created
    reloads: int = 0  # replicas that loaded their model in a finished replica's process
    replicas: list[dict[str, Any]] = field(default_factory=list)  # where and when each replica ran
    load_seconds: dict[str, list[float]] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)
    model_wall_seconds: dict[str, float] = field(default_factory=dict)  # first replica requested -> last released
    makespan_seconds: float = 0.0  # first replica requested -> last released, all models
    gpus: float = 0.0
    gpu_seconds: dict[str, float] = field(default_factory=dict)  # total, working, loading, held
    gpu_idle_fraction: float | None = None  # GPU-seconds without a working replica / total
    failed_models: dict[str, str] = field(default_factory=dict)  # model -> why it could not run
    retries: int = 0
    # model -> why each of its replicas lost while working was replaced (process died, engine died, unit timed out)
    replaced: dict[str, list[str]] = field(default_factory=dict)
    error_rows: int = 0
    # stopped early by max_error_rate: {max_error_rate, rows, error_rows, models: [...]}; else null
    stopped: dict[str, Any] | None = None
    # models stopped by max_error_rate while the others went on: model -> {max_error_rate, rows, error_rows,
    # top_error, top_error_rows} (orchestrator.schedule.error_cap.ModelErrorStop)
    stopped_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class MeasuredRate:
    """A model's speed as measured by a sweep that computed some of its units (rmorch.orchestrator.plan.estimate):
    what `rmorch plan` and `rmorch status` use instead of assumptions."""

    tokens_per_second: float = 0.0  # input tokens scored per second by one replica (a unit's own scoring time)
    gpus: float = 0.0  # GPUs per replica it ran with (0: a CPU replica)
    cpus: float = 0.0  # CPUs per replica
    units: int = 0  # units the rate was measured on
    tokens: float = 0.0
    seconds: float = 0.0  # their scoring seconds, all replicas together
    start_seconds: float | None = None  # mean seconds from requesting a replica to its first unit (process + load)
    load_seconds: float | None = None  # mean seconds the replica itself spent loading (model files, engine start)
    engine_starts: int = 0  # inference engines started (vLLM)
    run_id: str | None = None  # the sweep that measured it
    unit_overhead_seconds: float | None = None  # per unit, a replica's time held beyond its start and its units'
    # scoring: the driver's dispatch, results written, the release (what scoring seconds alone do not show)


@dataclass
class RunRecord:
    rmorch_version: str | None = None
    python: str | None = None
    platform: str | None = None
    hardware: dict[str, Any] | None = None  # the driver's machine and the cluster (rmorch.orchestrator.sweep)
    versions: dict[str, str | None] | None = None  # of ray, torch, transformers, pyarrow, vllm (None: not installed)
    seed: int | None = None
    suites: list[str] = field(default_factory=list)  # every suite the store has results of, merged over runs
    suite_kinds: dict[str, str] = field(default_factory=dict)  # suites declared with a kind of their own
    suite_versions: dict[str, str] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)  # items per suite
    models: dict[str, ModelRecord] = field(default_factory=dict)  # merged over runs: the latest settings win
    ensembles: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> EnsembleSpec.to_dict()
    started: str | None = None
    run_id: str | None = None  # plan.json carries the same id (rmorch.orchestrator.store.status)
    store_problems: list[str] | None = None  # files found unusable: their units are computed again
    last_run: LastRun | None = None
    merged_from: list[str] | None = None  # a merged report's record: the sweeps it merged
    # model -> its latest measured speed, merged over runs (a run that computed nothing of a model keeps the older)
    rates: dict[str, MeasuredRate] = field(default_factory=dict)
    # the sweep's own overheads as last measured: startup_seconds (the driver up to scheduling and after it: suites,
    # identities, store, Ray), report_seconds, process_seconds (the CLI process before run_sweep: imports)
    overheads: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as run.json holds it (absent values left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> RunRecord:
        return _read(cls, data)


class UnreadableRunRecord(UserError):
    """run.json exists but cannot be read as a record; `reason` says why."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def write_run(store: ResultStore, record: RunRecord) -> None:
    store.write_json(RUN_FILE, record.to_json())


def read_run(store: ResultStore) -> RunRecord | None:
    """The store's run record, or None when it has none. A file that cannot be read, or holds no JSON object, is an
    UnreadableRunRecord (a UserError) naming it."""
    if not store.exists(RUN_FILE):
        return None
    try:
        data = store.read_json(RUN_FILE)
    except (ValueError, UnicodeDecodeError) as e:
        raise UnreadableRunRecord(store.path(RUN_FILE), f"unreadable run metadata ({e}); rerun the sweep (it "
                                                        f"resumes from the results) to write it again") from None
    if not isinstance(data, dict):
        raise UnreadableRunRecord(store.path(RUN_FILE), "not a JSON object; rerun the sweep to write it again")
    return RunRecord.from_json(data)


# ---- reading JSON into the dataclasses, tolerantly --------------------------------------------------------------


def _read(cls: type[T], data: Any) -> T:
    """An instance of dataclass `cls` from JSON `data`: each field where its value has the field's JSON type, else the
    field's default."""
    data = data if isinstance(data, dict) else {}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            ok, value = _value(hints[f.name], data[f.name])
            if ok:
                kwargs[f.name] = value
    return cls(**kwargs)


def _value(hint: Any, value: Any) -> tuple[bool, Any]:
    """(fits, value read) of a JSON value for a field typed `hint`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None
        for arg in args:
            if arg is not type(None):
                ok, read = _value(arg, value)
                if ok:
                    return True, read
        return False, None
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict), _read(hint, value)
    if origin is dict:
        if not isinstance(value, dict):
            return False, None
        if dataclasses.is_dataclass(args[1]):
            return True, {k: _read(args[1], v) for k, v in value.items()}
        return True, value
    if origin is list:
        return isinstance(value, list), value
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is str:
        return isinstance(value, str), value
    return True, value
