"""A model as the spec names it: its kind, the kind's typed config, and what one replica needs.

Plain data shared by the driver (which builds it from YAML) and the replicas (which load the model it names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from rmorch.core.errors import SpecError
from rmorch.core.hashing import stable_hash

NOT_SCORING = {"scoring": False}  # dataclass field metadata: a setting that cannot change any number (timeouts, ...)


@dataclass(frozen=True)
class ResourceSpec:
    """What one replica of a model needs. num_gpus None = 1 for GPU-capable kinds when the cluster has GPUs.

    replicas: a number, or "auto" (the scheduler gives the model as many GPU replicas as shorten the sweep).
    params_b: the model's size in billions of parameters, a hint for the scheduler's cost model when it cannot
    read the size from the model's own config (rmorch.orchestrator.plan.costs)."""

    num_gpus: float | None = None
    num_cpus: float = 1.0
    replicas: int | Literal["auto"] = 1
    params_b: float | None = None

    def __post_init__(self) -> None:
        if self.num_gpus is not None and self.num_gpus < 0:
            raise SpecError("num_gpus", "must be >= 0")
        if self.num_cpus <= 0:
            raise SpecError("num_cpus", "must be > 0")
        if self.replicas != "auto" and (isinstance(self.replicas, bool) or not isinstance(self.replicas, int)
                                        or self.replicas < 1):
            raise SpecError("replicas", "must be an integer >= 1 or 'auto'")
        if self.params_b is not None and self.params_b <= 0:
            raise SpecError("params_b", "must be > 0")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    config: Any  # the kind's own frozen config dataclass (rmorch.actors.<kind>)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    suites: tuple[str, ...] | None = None  # run only on these suites of the spec (default: all)

    def runs_on(self, suite: str) -> bool:
        return self.suites is None or suite in self.suites

    def settings(self) -> dict[str, Any]:
        """Every spec key of this model that can change its numbers (config fields marked NOT_SCORING cannot). What
        the keys do not say -- the content of the files they name, the kind's version, libraries, hardware -- the
        driver adds to make a result's identity (rmorch.orchestrator.plan.provenance)."""
        fields = dataclasses.fields(self.config) if dataclasses.is_dataclass(self.config) else ()
        return {"kind": self.kind, **{f.name: getattr(self.config, f.name) for f in fields
                                      if f.metadata.get("scoring", True)}}

    @property
    def settings_hash(self) -> str:
        return stable_hash(self.settings())
