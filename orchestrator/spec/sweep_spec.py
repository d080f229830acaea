"""The sweep spec as typed, validated objects: a SweepSpec holds SuiteSpecs, ModelSpecs (rmorch.core.model_spec) and
EnsembleSpecs. Each validates itself on construction; rmorch.orchestrator.spec.parse builds them from YAML, naming the
key of anything wrong. Defaults live here, once: the YAML keys and their defaults are these dataclasses' fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from rmorch.core.errors import SpecError
from rmorch.core.model_spec import ModelSpec


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    kind: str | None = None  # the registered suite class to use under this name (`kind: file`); default: the name
    data: str | None = None
    split: str | None = None
    limit_per_subset: int | None = None
    subsets: tuple[str, ...] | None = None
    options: Any = None  # the suite's own frozen Options dataclass

    def __post_init__(self) -> None:
        if self.limit_per_subset is not None and self.limit_per_subset < 1:
            raise SpecError("limit_per_subset", "must be >= 1")
        if self.subsets is not None and not self.subsets:
            raise SpecError("subsets", "an empty list would evaluate nothing; leave it out for all subsets")


METHODS = ("mean", "min", "uncertainty")


@dataclass(frozen=True)
class EnsembleSpec:
    name: str
    members: tuple[str, ...]
    method: Literal["mean", "min", "uncertainty"] = "mean"
    penalty: float = 1.0

    def __post_init__(self) -> None:
        if len(self.members) < 2 or len(set(self.members)) != len(self.members):
            raise SpecError("members", "an ensemble needs at least two distinct member models")
        if self.method not in METHODS:
            raise SpecError("method", f"one of {', '.join(METHODS)}")
        if self.penalty < 0:
            raise SpecError("penalty", "must be >= 0")

    def to_dict(self) -> dict:
        return {"name": self.name, "members": list(self.members), "method": self.method, "penalty": self.penalty}


DEFAULT_RESAMPLES = 1000  # bootstrap resamples behind the report's intervals and paired tests


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """The whole spec. Its fields are the spec's top-level keys, in the order spec.yaml records them."""

    seed: int = 0
    out: str = "runs/latest"
    shard_size: int = 256  # items per work unit: the granularity of sharding, resume and retries
    max_retries: int = 2  # per work unit, when a replica dies (process, engine) or its unit times out
    # seconds a replica may work on one unit before it counts as hung, is killed and replaced; "auto": 20x the unit's
    # expected time from the model's measured rate, at least 300 s (an hour before anything of it is measured);
    # None: never (rmorch.orchestrator.schedule.scheduler.Scheduler.unit_timeout)
    unit_timeout_s: float | Literal["auto"] | None = "auto"
    # seconds from requesting a replica to its model being loaded (process start, weights downloaded and read,
    # engine started) before the load counts as hung: the replica is killed and a new one started, as for a replica
    # that died starting (`max_retries`); None: never
    load_timeout_s: float | None = 7200.0
    resamples: int = DEFAULT_RESAMPLES  # bootstrap resamples of the report's intervals and paired tests (0: none)
    # stop the sweep once more than this share of the result rows written in this run are error rows (checked from
    # rmorch.orchestrator.schedule.error_cap.ERROR_CAP_MIN_ROWS rows on); None: never stop for errors
    max_error_rate: float | None = 0.5
    # a rerun computes the error rows of finished units again (only those requests; rmorch.orchestrator.plan.redo);
    # true keeps them as final
    keep_errors: bool = False
    # a replica whose model is done may load the next model of the same shape in its process instead of a new
    # process starting (only kinds whose `reusable_process` allows it: transformers and weightless kinds, not vLLM)
    reuse_processes: bool = True
    suites: tuple[SuiteSpec, ...]
    models: tuple[ModelSpec, ...]
    ensembles: tuple[EnsembleSpec, ...] = ()  # computed from stored scores (rmorch.orchestrator.report.ensembles)

    def __post_init__(self) -> None:
        if not self.suites:
            raise SpecError("suites", "at least one suite is needed")
        if not self.models:
            raise SpecError("models", "at least one model is needed")
        if self.shard_size < 1:
            raise SpecError("shard_size", "must be >= 1")
        if self.seed < 0:
            raise SpecError("seed", "must be >= 0")
        if self.max_retries < 0:
            raise SpecError("max_retries", "must be >= 0")
        if self.unit_timeout_s != "auto" and not _seconds_or_none(self.unit_timeout_s):
            raise SpecError("unit_timeout_s", "a number of seconds > 0, auto, or null (never time a unit out)")
        if not _seconds_or_none(self.load_timeout_s):
            raise SpecError("load_timeout_s", "a number of seconds > 0, or null (never time a load out)")
        if self.resamples < 0:
            raise SpecError("resamples", "must be >= 0")
        if self.max_error_rate is not None and not 0 < self.max_error_rate <= 1:
            raise SpecError("max_error_rate", "must be in (0, 1], or null to never stop a sweep for errors")
        for what, names in (("models", [m.name for m in self.models]), ("suites", [s.name for s in self.suites])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise SpecError(what, f"duplicate names: {sorted(dup)}")
        suite_names = {s.name for s in self.suites}
        for i, m in enumerate(self.models):
            unknown = [s for s in (m.suites or ()) if s not in suite_names]
            if unknown:
                raise SpecError(f"models[{i}].suites", f"not suites of this spec: {unknown}")
        models = {m.name: m for m in self.models}
        names = [e.name for e in self.ensembles]
        for i, e in enumerate(self.ensembles):
            if e.name in models or names.count(e.name) > 1:
                raise SpecError(f"ensembles[{i}].name", f"'{e.name}' is already a model or ensemble name")
            unknown = [m for m in e.members if m not in models]
            if unknown:
                raise SpecError(f"ensembles[{i}].members", f"not models of this spec: {unknown}")

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data (what `out/spec.yaml` records)."""
        return {
            **{k: getattr(self, k) for k in SCALAR_KEYS},
            "suites": [_suite_to_dict(s) for s in self.suites],
            "models": [_model_to_dict(m) for m in self.models],
            **({"ensembles": [e.to_dict() for e in self.ensembles]} if self.ensembles else {}),
        }


ENTRY_LISTS = ("suites", "models", "ensembles")  # top-level keys that hold lists of entries
TOP_KEYS = tuple(f.name for f in dataclasses.fields(SweepSpec))
SCALAR_KEYS = tuple(k for k in TOP_KEYS if k not in ENTRY_LISTS)  # seed, out, shard_size, ...
SUITE_KEYS = tuple(f.name for f in dataclasses.fields(SuiteSpec) if f.name != "options")  # beside a suite's options


def _seconds_or_none(value: Any) -> bool:
    """A timeout as the spec may give it: a number of seconds > 0 (not a bool), or None (never)."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0)


def _suite_to_dict(s: SuiteSpec) -> dict[str, Any]:
    d = {k: v for k, v in dataclasses.asdict(s).items() if k != "options" and v is not None}
    if s.subsets is not None:
        d["subsets"] = list(s.subsets)
    if s.options is not None:
        d.update({k: v for k, v in dataclasses.asdict(s.options).items() if v is not None})
    return d


def _model_to_dict(m: ModelSpec) -> dict[str, Any]:
    res = {k: v for k, v in dataclasses.asdict(m.resources).items() if v is not None}
    only = {"suites": list(m.suites)} if m.suites is not None else {}
    return {"name": m.name, "kind": m.kind, **only, **dataclasses.asdict(m.config), **res}
