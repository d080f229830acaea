"""rmorch: evaluate reward models and LLM judges at cluster scale.

The public facade. The layers install under this one name (their folders stay at the repository's top level):

    rmorch.core          errors, the two Arrow schemas, permutations: the vocabulary every layer shares
    rmorch.suites        what is measured and how it is scored (one file per benchmark)
    rmorch.actors        what runs on the accelerators (one class per model kind, backends beside them)
    rmorch.orchestrator  the driver: spec -> plan -> schedule -> store -> report, and the CLI

    from rmorch import load_spec, run_sweep
    result = run_sweep(load_spec("spec.yaml"))

Names below are imported on first use, so `import rmorch` stays cheap and importing a layer never pulls in the
driver.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "run_sweep": "rmorch.orchestrator.sweep",
    "SweepResult": "rmorch.orchestrator.sweep",
    "load_spec": "rmorch.orchestrator.spec.parse",
    "spec_from_dict": "rmorch.orchestrator.spec.parse",
    "SweepSpec": "rmorch.orchestrator.spec.parse",
    "build_report": "rmorch.orchestrator.report.compute",
    "write_report": "rmorch.orchestrator.report.render",
    "register_kind": "rmorch.actors",
    "get_kind": "rmorch.actors",
    "ModelKind": "rmorch.actors.base",
    "register_suite": "rmorch.suites",
    "get_suite_class": "rmorch.suites",
    "Suite": "rmorch.suites.base",
    "SuiteScore": "rmorch.suites.base",
    "UserError": "rmorch.core.errors",
}

__all__ = list(_EXPORTS)  # the names above, each imported on first use


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rmorch' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
