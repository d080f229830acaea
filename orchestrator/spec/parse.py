"""The sweep spec: typed, validated on construction. A wrong spec fails before anything starts, naming the key.

YAML form (keys are a contract; see README "Spec format"):

    seed: 0
    out: runs/demo
    shard_size: 256
    suites:
      - name: rewardbench
        data: ../shared/data/rewardbench
        limit_per_subset: 10
    models:
      - name: length
      - name: smol-rm
        kind: classifier
        path: builtin:smollm2-135m-instruct

Relative paths are relative to the current working directory. A model entry holds common keys (name, kind, and the
resource keys of ResourceSpec) plus the keys of its kind's config dataclass (see actors/).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

from rmorch.orchestrator.report.ensembles import EnsembleSpec
from rmorch.core.errors import SpecError, UserError, did_you_mean, read_yaml


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
    config: Any  # the kind's own frozen config dataclass (actors.<kind>.Config)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    suites: tuple[str, ...] | None = None  # run only on these suites of the spec (default: all)

    def runs_on(self, suite: str) -> bool:
        return self.suites is None or suite in self.suites

    def settings(self) -> dict[str, Any]:
        """Everything about this model that can change its numbers (config fields marked NOT_SCORING cannot)."""
        fields = dataclasses.fields(self.config) if dataclasses.is_dataclass(self.config) else ()
        return {"kind": self.kind, **{f.name: getattr(self.config, f.name) for f in fields
                                      if f.metadata.get("scoring", True)}}

    @property
    def settings_hash(self) -> str:
        return stable_hash(self.settings())


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


@dataclass(frozen=True)
class SweepSpec:
    suites: tuple[SuiteSpec, ...]
    models: tuple[ModelSpec, ...]
    out: str = "runs/latest"
    seed: int = 0
    shard_size: int = 256  # items per work unit: the granularity of sharding, resume and retries
    max_retries: int = 2  # per work unit, when a replica dies
    ensembles: tuple[EnsembleSpec, ...] = ()  # computed from stored scores (rmorch.orchestrator.report.ensembles)
    resamples: int = 1000  # bootstrap resamples of the report's intervals and paired tests (0: none)
    # stop the sweep once more than this share of the result rows written in this run are error rows (checked from
    # rmorch.orchestrator.schedule.error_cap.ERROR_CAP_MIN_ROWS rows on); None: never stop for errors
    max_error_rate: float | None = 0.5
    # a replica whose model is done may load the next model of the same shape in its process instead of a new
    # process starting (only kinds whose `reusable_process` allows it: transformers and weightless kinds, not vLLM)
    reuse_processes: bool = True

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
            "seed": self.seed,
            "out": self.out,
            "shard_size": self.shard_size,
            "max_retries": self.max_retries,
            "resamples": self.resamples,
            "max_error_rate": self.max_error_rate,
            "reuse_processes": self.reuse_processes,
            "suites": [_suite_to_dict(s) for s in self.suites],
            "models": [_model_to_dict(m) for m in self.models],
            **({"ensembles": [e.to_dict() for e in self.ensembles]} if self.ensembles else {}),
        }


def stable_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---- building dataclasses from YAML mappings, with key-naming errors -----------------------------------------


def build(cls: type, data: Mapping[str, Any], key: str, source: str | None = None) -> Any:
    """Construct dataclass `cls` from `data`, checking unknown keys, missing keys and simple types."""
    if not isinstance(data, Mapping):
        raise SpecError(key, f"expected a mapping, got {type(data).__name__}", source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for k in data:
        if k not in fields:
            raise SpecError(f"{key}.{k}", f"unknown key{did_you_mean(str(k), fields)}", source)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], f"{key}.{name}", source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{key}.{name}", "required key is missing", source)
    try:
        return cls(**kwargs)
    except SpecError as e:
        raise SpecError(f"{key}.{e.key}", str(e).split(": ", 1)[-1], source) from None


def _check_type(value: Any, hint: Any, key: str, source: str | None) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, key, source)
            except SpecError as e:
                errors.append(str(e))
        raise SpecError(key, f"expected {_hint_name(hint)}, got {value!r:.60}", source)
    if origin is Literal:
        if value not in args:
            raise SpecError(key, f"must be one of {', '.join(map(repr, args))}, got {value!r:.60}", source)
        return value
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise SpecError(key, f"expected a list, got {value!r:.60}", source)
        return tuple(_check_type(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(key, f"expected a number, got {value!r:.60}", source)
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(key, f"expected an integer, got {value!r:.60}", source)
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise SpecError(key, f"expected {hint.__name__}, got {value!r:.60}", source)
        return value
    return value


def _hint_name(hint: Any) -> str:
    return " or ".join(getattr(a, "__name__", str(a)) for a in typing.get_args(hint) if a is not type(None))


# ---- the YAML document -------------------------------------------------------------------------------------

_TOP_KEYS = {"seed", "out", "shard_size", "max_retries", "resamples", "max_error_rate", "reuse_processes", "suites",
             "models", "ensembles"}
_MODEL_COMMON = {"name", "kind", "suites"} | {f.name for f in dataclasses.fields(ResourceSpec)}
_SUITE_COMMON = {f.name for f in dataclasses.fields(SuiteSpec)} - {"options"}


def load_spec(path: str) -> SweepSpec:
    return spec_from_dict(read_yaml(path, f"spec {path}"), source=path)


def spec_from_dict(doc: Any, source: str | None = None) -> SweepSpec:
    if not isinstance(doc, Mapping):
        raise SpecError("<top>", "the spec must be a mapping with 'suites' and 'models'", source)
    _refuse_surrogates(doc, "", source)
    for k in doc:
        if k not in _TOP_KEYS:
            raise SpecError(str(k), f"unknown key{did_you_mean(str(k), _TOP_KEYS)}", source)
    suites = doc.get("suites")
    models = doc.get("models")
    for name, value in (("suites", suites), ("models", models)):
        if not isinstance(value, list) or not value:
            raise SpecError(name, "expected a non-empty list", source)
    top = {k: doc[k] for k in ("seed", "out", "shard_size", "max_retries", "resamples", "max_error_rate",
                               "reuse_processes") if k in doc}
    for k, v in top.items():
        _check_type(v, typing.get_type_hints(SweepSpec)[k], k, source)
    suite_specs = tuple(_suite_spec(s, i, source) for i, s in enumerate(suites))
    model_specs = tuple(_model_spec(m, i, source) for i, m in enumerate(models))
    ensembles = doc.get("ensembles")
    ensembles = [] if ensembles is None else ensembles
    if not isinstance(ensembles, list):
        raise SpecError("ensembles", "expected a list", source)
    ensemble_specs = tuple(_ensemble_spec(e, i, source) for i, e in enumerate(ensembles))
    try:
        return SweepSpec(suites=suite_specs, models=model_specs, ensembles=ensemble_specs, **top)
    except SpecError as e:
        raise SpecError(e.key, str(e).split(": ", 1)[-1], source) from None


def _refuse_surrogates(value: Any, key: str, source: str | None, seen: set[int] | None = None) -> None:
    """A YAML "\\uD800"-style escape gives a str that is not valid unicode: names and paths holding one would fail
    far from the spec (writing results, hashing). Refused here, naming the key."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SpecError(key or "<top>", "text holds a lone UTF-16 surrogate escape: not valid unicode",
                            source) from None
        return
    seen = set() if seen is None else seen
    if not isinstance(value, (Mapping, list)) or id(value) in seen:  # YAML anchors can make a list hold itself
        return
    seen.add(id(value))
    pairs = value.items() if isinstance(value, Mapping) else ((f"[{i}]", v) for i, v in enumerate(value))
    for k, v in pairs:
        name = str(k).encode("utf-8", "backslashreplace").decode()
        name = name if isinstance(value, list) else f".{name}" if key else name
        _refuse_surrogates(k, key + name, source, seen)
        _refuse_surrogates(v, key + name, source, seen)


def _ensemble_spec(entry: Any, i: int, source: str | None) -> EnsembleSpec:
    if isinstance(entry, Mapping) and isinstance(entry.get("members"), list):
        entry = {**entry, "members": tuple(entry["members"])}
    return build(EnsembleSpec, entry, f"ensembles[{i}]", source)


def _suite_spec(entry: Any, i: int, source: str | None) -> SuiteSpec:
    if isinstance(entry, str):
        entry = {"name": entry}
    key = f"suites[{i}]"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise SpecError(f"{key}.name", "each suite needs a name", source)
    kind = entry.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise SpecError(f"{key}.kind", f"expected a suite kind name, got {kind!r:.60}", source)
    try:
        cls = suite_class(entry["name"], kind)
    except SpecError as e:
        raise SpecError(f"{key}.{e.key}", str(e).split(": ", 1)[-1], source) from None
    except UserError as e:
        raise SpecError(f"{key}.kind" if kind else f"{key}.name", str(e), source) from None
    option_keys = {f.name for f in dataclasses.fields(cls.Options)}
    common = {k: v for k, v in entry.items() if k in _SUITE_COMMON}
    extra = {k: v for k, v in entry.items() if k not in _SUITE_COMMON}
    for k in extra:
        if k not in option_keys:
            raise SpecError(f"{key}.{k}", f"unknown key{did_you_mean(str(k), _SUITE_COMMON | option_keys)}", source)
    _refuse_secrets(entry, key, source)
    spec = build(SuiteSpec, common, key, source)
    return dataclasses.replace(spec, options=build(cls.Options, extra, key, source))


def suite_class(name: str, kind: str | None = None) -> type:
    """The suite class a spec entry selects: the class registered as `kind` (default: as `name`). With a kind and
    a name of their own (`{name: my-prefs, kind: file}`) the entry gets a subclass named `name`, registered under
    that name, so that items, results and the leaderboard carry the user's name and `get_suite_class(name)` finds
    the class (the report scores by name). The same (name, kind) always gives the same class."""
    from rmorch.suites import _REGISTRY, get_suite_class, register_suite

    if kind is None or kind == name:
        return get_suite_class(name)
    base = get_suite_class(kind)
    existing = _REGISTRY.get(name)
    if existing is not None:
        if getattr(existing, "_alias_of", None) is base:
            return existing
        raise SpecError("name", f"'{name}' is already the name of a suite ({existing.__module__}); "
                                f"give this {kind} suite another name")
    cls = type(f"{base.__name__}_{name}", (base,), {"name": name, "_alias_of": base, "__module__": base.__module__})
    return register_suite(cls)


def _model_spec(entry: Any, i: int, source: str | None) -> ModelSpec:
    from rmorch.actors import get_kind, infer_kind, kind_names

    if isinstance(entry, str):
        entry = {"name": entry}
    key = f"models[{i}]"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise SpecError(f"{key}.name", "each model needs a name", source)
    kind_name = entry.get("kind") or infer_kind(entry["name"])
    if kind_name is None:
        raise SpecError(
            f"{key}.kind",
            f"model '{entry['name']}' needs a kind (see `rmorch ls`){did_you_mean(entry['name'], kind_names())}",
            source,
        )
    if not isinstance(kind_name, str):
        raise SpecError(f"{key}.kind", f"expected a kind name, got {kind_name!r:.60}", source)
    try:
        kind = get_kind(kind_name)
    except UserError as e:
        raise SpecError(f"{key}.kind", str(e), source) from None
    common = {k: v for k, v in entry.items() if k in _MODEL_COMMON}
    extra = {k: v for k, v in entry.items() if k not in _MODEL_COMMON}
    config_keys = {f.name for f in dataclasses.fields(kind.Config)}
    for k in extra:
        if k not in config_keys:
            raise SpecError(f"{key}.{k}", f"unknown key{did_you_mean(str(k), _MODEL_COMMON | config_keys)}", source)
    resources = build(ResourceSpec, {k: v for k, v in common.items() if k not in ("name", "kind", "suites")}, key,
                      source)
    _refuse_secrets(extra, key, source)
    config = build(kind.Config, extra, key, source)
    only = entry.get("suites")
    if only is not None and (not isinstance(only, list) or not only or not all(isinstance(x, str) for x in only)):
        raise SpecError(f"{key}.suites", f"expected a non-empty list of suite names, got {only!r:.60}", source)
    return ModelSpec(name=entry["name"], kind=kind_name, config=config, resources=resources,
                     suites=tuple(only) if only is not None else None)


_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _refuse_secrets(entry: Mapping[str, Any], key: str, source: str | None) -> None:
    """A spec is written to the result store (spec.yaml, run.json), so it must hold no secret: a key ending in
    `_env` (`api_key_env`) names an environment variable and must look like one, and no URL carries a password.
    The messages never repeat the value."""
    for k, v in entry.items():
        if str(k).endswith("_env") and v is not None and not (isinstance(v, str) and _ENV_NAME.fullmatch(v)):
            raise SpecError(f"{key}.{k}", "must be the NAME of an environment variable ([A-Z_][A-Z0-9_]*), not a "
                                          "secret: export the secret in that variable and name the variable here",
                            source)
        if isinstance(v, str) and "://" in v:
            try:
                password = urlsplit(v).password
            except ValueError:
                password = None
            if password:
                raise SpecError(f"{key}.{k}", "a URL with a password would be written to the result store; give "
                                              "credentials through environment variables (api_key_env)", source)


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
