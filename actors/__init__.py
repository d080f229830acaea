"""The model-kind registry. Each kind is one class in this package, registered with `@register_kind`; other packages
add theirs through the `rmorch.kinds` entry-point group (each entry point names a ModelKind subclass).

Importing this package is cheap: kinds import torch, transformers or vLLM only when a model is loaded.
"""

from __future__ import annotations

import dataclasses

from rmorch.actors.base import ModelKind
from rmorch.core.registry import Registry

KINDS: Registry[type[ModelKind]] = Registry("model kind", ModelKind, name_attr="kind", entry_points="rmorch.kinds")
register_kind = KINDS.register
get_kind = KINDS.get
kind_names = KINDS.names


def infer_kind(model_name: str) -> str | None:
    """A model named like a kind that needs no settings (the baselines `length`, `random`) is of that kind."""
    cls = KINDS.find(model_name)
    if cls is not None and not _has_required_config(cls):
        return model_name
    return None


def _has_required_config(cls: type[ModelKind]) -> bool:
    return any(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(cls.Config)
    )


from rmorch.actors import (  # noqa: F401  (registration)
    baselines,
    classifier,
    density_ratio,
    gpm,
    implicit,
    judge,
    preference,
    published,
)

__all__ = ["KINDS", "ModelKind", "get_kind", "infer_kind", "kind_names", "register_kind"]
