"""The suite registry: built-in suites register themselves with `@register_suite`; other packages add theirs through
the `rmorch.suites` entry-point group (each entry point names a Suite subclass)."""

from __future__ import annotations

from importlib import metadata
from typing import TypeVar

from rmorch.core.errors import UserError, did_you_mean
from rmorch.suites.base import Suite, SuiteOptions, SuiteScore

S = TypeVar("S", bound=type[Suite])

_REGISTRY: dict[str, type[Suite]] = {}
_PLUGINS_LOADED = False


def register_suite(cls: S) -> S:
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"suite '{name}' registered twice: {_REGISTRY[name].__module__} and {cls.__module__}")
    _REGISTRY[name] = cls
    return cls


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in metadata.entry_points(group="rmorch.suites"):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Suite)):
            raise UserError(f"entry point rmorch.suites:{ep.name} ({ep.value}) is not a Suite subclass")
        register_suite(cls)


def suite_names() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def get_suite_class(name: str) -> type[Suite]:
    _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown suite '{name}'{did_you_mean(name, _REGISTRY)}") from None


# Built-in suites (imported for their registration side effect).
from rmorch.suites import (  # noqa: E402,F401
    gsm8kbon,
    longrewardbench,
    mrewardbench,
    ragrewardbench,
    rewardbench,
    rewardbench2,
    rewardmath,
    rmbench,
    userfile,
    vlrewardbench,
)

__all__ = ["Suite", "SuiteOptions", "SuiteScore", "get_suite_class", "register_suite", "suite_names"]
