"""The suite registry: built-in suites register themselves with `@register_suite`; other packages add theirs through
the `rmorch.suites` entry-point group (each entry point names a Suite subclass). `SUITES.alias` gives a spec entry of
its own name over a registered suite (`{name: my-prefs, kind: file}`)."""

from __future__ import annotations

from rmorch.core.registry import Registry
from rmorch.suites.base import Suite, SuiteOptions, SuiteScore

SUITES: Registry[type[Suite]] = Registry("suite", Suite, name_attr="name", entry_points="rmorch.suites")
register_suite = SUITES.register
get_suite_class = SUITES.get
suite_names = SUITES.names

# Built-in suites (imported for their registration side effect).
from rmorch.suites import (  # noqa: F401
    gsm8kbon,
    judgebench,
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

__all__ = ["SUITES", "Suite", "SuiteOptions", "SuiteScore", "get_suite_class", "register_suite", "suite_names"]
