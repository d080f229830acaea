"""The spec YAML parsed into typed objects (rmorch.orchestrator.spec.sweep_spec): a wrong spec fails before anything
starts, naming the key.

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
resource keys of ResourceSpec) plus the keys of its kind's config dataclass (see actors/). Every key list is derived
from those dataclasses' fields, and every default is theirs.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from rmorch.actors import KINDS, infer_kind
from rmorch.core.errors import SpecError, UserError, did_you_mean, read_yaml
from rmorch.core.model_spec import ModelSpec, ResourceSpec
from rmorch.orchestrator.spec.sweep_spec import (
    SCALAR_KEYS,
    SUITE_KEYS,
    TOP_KEYS,
    EnsembleSpec,
    SuiteSpec,
    SweepSpec,
)
from rmorch.suites import SUITES

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
    names = []
    for a in typing.get_args(hint):
        if typing.get_origin(a) is Literal:
            names.extend(repr(v) for v in typing.get_args(a))
        elif a is not type(None):
            names.append(getattr(a, "__name__", str(a)))
    return " or ".join(names)


# ---- the YAML document -------------------------------------------------------------------------------------

# keys of a model entry beside its kind's config: those of ModelSpec itself and the resources one replica needs
_MODEL_OWN = ("name", "kind", "suites")
_MODEL_COMMON = set(_MODEL_OWN) | {f.name for f in dataclasses.fields(ResourceSpec)}
_SUITE_COMMON = set(SUITE_KEYS)


def load_spec(path: str) -> SweepSpec:
    return spec_from_dict(read_yaml(path, f"spec {path}"), source=path)


def spec_from_dict(doc: Any, source: str | None = None) -> SweepSpec:
    if not isinstance(doc, Mapping):
        raise SpecError("<top>", "the spec must be a mapping with 'suites' and 'models'", source)
    _refuse_surrogates(doc, "", source)
    for k in doc:
        if k not in TOP_KEYS:
            raise SpecError(str(k), f"unknown key{did_you_mean(str(k), TOP_KEYS)}", source)
    suites = doc.get("suites")
    models = doc.get("models")
    for name, value in (("suites", suites), ("models", models)):
        if not isinstance(value, list) or not value:
            raise SpecError(name, "expected a non-empty list", source)
    top = {k: doc[k] for k in SCALAR_KEYS if k in doc}
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
    a name of their own (`{name: my-prefs, kind: file}`) the entry gets the registry's alias class, so that items,
    results and the leaderboard carry the user's name and `SUITES.get(name)` finds the class (the report scores by
    name). The same (name, kind) always gives the same class."""
    if kind is None or kind == name:
        return SUITES.get(name)
    return SUITES.alias(name, kind)


def _model_spec(entry: Any, i: int, source: str | None) -> ModelSpec:
    if isinstance(entry, str):
        entry = {"name": entry}
    key = f"models[{i}]"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise SpecError(f"{key}.name", "each model needs a name", source)
    kind_name = entry.get("kind") or infer_kind(entry["name"])
    if kind_name is None:
        raise SpecError(
            f"{key}.kind",
            f"model '{entry['name']}' needs a kind (see `rmorch ls`){did_you_mean(entry['name'], KINDS.names())}",
            source,
        )
    if not isinstance(kind_name, str):
        raise SpecError(f"{key}.kind", f"expected a kind name, got {kind_name!r:.60}", source)
    try:
        kind = KINDS.get(kind_name)
    except UserError as e:
        raise SpecError(f"{key}.kind", str(e), source) from None
    common = {k: v for k, v in entry.items() if k in _MODEL_COMMON}
    extra = {k: v for k, v in entry.items() if k not in _MODEL_COMMON}
    config_keys = {f.name for f in dataclasses.fields(kind.Config)}
    for k in extra:
        if k not in config_keys:
            raise SpecError(f"{key}.{k}", f"unknown key{did_you_mean(str(k), _MODEL_COMMON | config_keys)}", source)
    resources = build(ResourceSpec, {k: v for k, v in common.items() if k not in _MODEL_OWN}, key, source)
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
