"""What a model directory may make rmorch do when it loads: the checks every loader runs before reading weights.

Two things in a model's files can run code on the machine that loads them:
- pickle-based weights (`.bin`, `.pt`, `.pth`, `.ckpt`, `.pkl`, `.pickle`): unpickling can execute anything. Only
  safetensors are loaded unless the model's spec sets `allow_pickle: true`.
- custom model code: a `config.json` with `auto_map` names Python files of the checkpoint that transformers (and
  vLLM) would import. They run only when the model's spec sets `trust_remote_code: true`, and then with a warning.

`check_model_files(path, config, model_name)` (config: the model's `WeightsConfig`, whose keys opt in) runs both checks on a local directory, before anything reads its
weights, and raises a UserError naming the model, the files and the key that opts in. A hub id cannot be looked at
here (no network at check time); for hub ids the loaders' own flags do the work instead: transformers gets
`use_safetensors=True` (`safetensors_only`) and `trust_remote_code` as set, vLLM gets `load_format="safetensors"`
(`vllm_load_format`) and `trust_remote_code` as set. Those hub-id paths cannot be tested offline.

This module is imported by light code paths: it imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Protocol

from rmorch.core.errors import UserError

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFETENSORS_SUFFIX = ".safetensors"

# vLLM's start_engine gets a path, not the spec: the last check of each path in this process records whether its
# spec allowed pickle (key: the real path of a local directory, or the hub id). Unchecked paths get safetensors.
_pickle_allowed: dict[str, bool] = {}
_warned: set[tuple[str, str]] = set()  # (model, path) warned about custom code: once per process


class LoadOptIns(Protocol):
    """What a model's spec allows its files to do. Every kind's `WeightsConfig` (rmorch.actors.config) is one."""

    @property
    def allow_pickle(self) -> bool: ...

    @property
    def trust_remote_code(self) -> bool: ...

    def adapter_paths(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class NoOptIns:
    """Safetensors only, no custom code, no adapters (`rmorch generate`, which has no opt-in keys)."""

    allow_pickle: bool = False
    trust_remote_code: bool = False

    def adapter_paths(self) -> tuple[str, ...]:
        return ()


def safetensors_only(config: LoadOptIns) -> bool | None:
    """transformers' `use_safetensors`: True (refuse pickle weights) unless the spec allows pickle, then None
    (transformers' default: safetensors first, else pickle)."""
    return None if config.allow_pickle else True


def vllm_load_format(path: str) -> str:
    """vLLM's `load_format` for `path`: "safetensors", or "auto" (safetensors first, else pickle `.bin`/`.pt`) when
    the last `check_model_files` of this path in this process was for a spec that allows pickle."""
    return "auto" if _pickle_allowed.get(_key(path), False) else "safetensors"


def check_model_files(path: str, config: LoadOptIns, model_name: str) -> None:
    """Refuse a local model directory (`path`, builtin names already resolved) whose weights are only pickle files
    unless `config.allow_pickle`, or whose config.json asks for custom code unless `config.trust_remote_code`;
    warn (once per model and path) when custom code is allowed and asked for. Adapters (`config.adapter_paths()`,
    a judge's LoRA) are checked for pickle weights too. Hub ids are left to the loaders' flags (see the module docstring). Call it before anything loads weights."""
    allow_pickle, trust = config.allow_pickle, config.trust_remote_code
    _pickle_allowed[_key(path)] = allow_pickle
    if not os.path.isdir(path):
        if trust:
            _warn_once(model_name, path, "model '%s' may run custom code from the hub repository %s "
                                         "(trust_remote_code: true)")
        return
    if not allow_pickle:
        _refuse_pickle_only(path, model_name)
        _refuse_explicit_pickle_file(path, model_name)
        for adapter in config.adapter_paths():
            if os.path.isdir(adapter):
                _refuse_pickle_only(adapter, model_name, what="LoRA adapter")
    classes = custom_code_classes(_config_json(path))
    if classes and not trust:
        raise UserError(
            f"model '{model_name}': {os.path.join(path, 'config.json')} asks for custom model code "
            f"(auto_map: {', '.join(classes)}); rmorch runs a checkpoint's own code only when the model's spec sets "
            f"`trust_remote_code: true` (do so only for code you trust)"
        )
    if classes:
        _warn_once(model_name, path, "model '%s' runs custom code from %s (trust_remote_code: true)")


def weight_files(path: str) -> tuple[list[str], list[str]]:
    """(safetensors files, pickle files) directly in the directory `path`, sorted by name."""
    names = sorted(os.listdir(path))
    safe = [n for n in names if n.endswith(SAFETENSORS_SUFFIX)]
    pickled = [n for n in names if n.endswith(PICKLE_SUFFIXES) and os.path.isfile(os.path.join(path, n))]
    return safe, pickled


def custom_code_classes(model_config: dict[str, Any]) -> list[str]:
    """The `auto_map` entries of a config.json ("AutoModel=modeling_x.X", ...): the custom code it asks for."""
    auto_map = model_config.get("auto_map")
    if not auto_map:
        return []
    if not isinstance(auto_map, dict):
        return [str(auto_map)]
    return [f"{k}={v if isinstance(v, str) else '/'.join(str(x) for x in v if x)}" for k, v in auto_map.items()]


def _refuse_pickle_only(path: str, model_name: str, what: str = "weights") -> None:
    safe, pickled = weight_files(path)
    if pickled and not safe:
        raise UserError(
            f"model '{model_name}': {path} holds only pickle {what} ({', '.join(pickled)}), no safetensors; loading "
            f"pickle can run code, so rmorch loads safetensors only unless the model's spec sets `allow_pickle: true` "
            f"(do so only for files you trust, or convert them to safetensors)"
        )


def _refuse_explicit_pickle_file(path: str, model_name: str) -> None:
    """config.json's `transformers_weights` names the weights file transformers loads, whatever the flags say."""
    named = _config_json(path).get("transformers_weights")
    if isinstance(named, str) and not named.endswith((SAFETENSORS_SUFFIX, SAFETENSORS_SUFFIX + ".index.json")):
        raise UserError(
            f"model '{model_name}': {os.path.join(path, 'config.json')} names pickle weights ({named}) in "
            f"`transformers_weights`; rmorch loads safetensors only unless the model's spec sets `allow_pickle: true`"
        )


def _warn_once(model_name: str, path: str, message: str) -> None:
    """Log `message % (model_name, path)` once per process (a model's loaders may check the same path twice)."""
    if (model_name, _key(path)) not in _warned:
        _warned.add((model_name, _key(path)))
        log.warning(message, model_name, path)


def _config_json(path: str) -> dict[str, Any]:
    """The directory's config.json ({} when missing or unreadable: the loaders report that themselves)."""
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(path: str) -> str:
    return os.path.realpath(path) if os.path.isdir(path) else path
