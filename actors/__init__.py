"""The model-kind registry. Each kind is one class in this package, registered with `@register_kind`.

Importing this package is cheap: kinds import torch, transformers or vLLM only when a model is loaded.
"""

from __future__ import annotations

from typing import TypeVar

from rmorch.actors.base import ModelKind
from rmorch.core.errors import UserError, did_you_mean

K = TypeVar("K", bound=type[ModelKind])

_KINDS: dict[str, type[ModelKind]] = {}


def register_kind(cls: K) -> K:
    if cls.kind in _KINDS and _KINDS[cls.kind] is not cls:
        raise ValueError(f"model kind '{cls.kind}' registered twice")
    _KINDS[cls.kind] = cls
    return cls


def kind_names() -> list[str]:
    return sorted(_KINDS)


def get_kind(name: str) -> type[ModelKind]:
    try:
        return _KINDS[name]
    except KeyError:
        raise UserError(f"unknown model kind '{name}'{did_you_mean(name, _KINDS)}") from None


def infer_kind(model_name: str) -> str | None:
    """A model named like a kind that needs no settings (the baselines `length`, `random`) is of that kind."""
    cls = _KINDS.get(model_name)
    if cls is not None and not _has_required_config(cls):
        return model_name
    return None


def _has_required_config(cls: type[ModelKind]) -> bool:
    import dataclasses

    return any(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(cls.Config)
    )


from rmorch.actors import (  # noqa: E402,F401  (registration)
    baselines, classifier, density_ratio, gpm, implicit, judge, preference, published,
)

__all__ = ["ModelKind", "get_kind", "infer_kind", "kind_names", "register_kind"]
