"""The fast tier (`make test-fast`): tests here start no Ray, no vLLM engine and no child process.

While a test under tests/unit/ sets up (its fixtures too, whatever their scope) and runs, `ray.init`,
`subprocess.Popen` (and so `subprocess.run`, Ray's own process starts, a browser), `multiprocessing` process starts
and the construction of a vLLM engine (`vllm.LLM`, `LLMEngine`, `AsyncLLM`) fail the test at once with
`pytest.fail`, which `except Exception` in the code under test does not swallow. A test that needs any of them
belongs one directory up, in the full tier. So does one that imports vLLM: its first import probes the CPU in child
processes (and takes seconds). vLLM is not imported here: its engine modules are patched if a test imports them.
A test that starts nothing but takes long (a real model's weights, hypothesis fuzzing) stays in the full tier too:
this tier runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import multiprocessing.process
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

# platform.processor() runs `uname -p` in a child process once per interpreter and caches the answer; whichever test
# asked first (platform.platform() in a sweep's run metadata, for one) would fail. Asked here, before any guard.
platform.processor()

# module -> (class, method) pairs that build a vLLM engine
VLLM_ENGINE_ENTRY_POINTS = {
    "vllm.entrypoints.llm": [("LLM", "__init__")],
    "vllm.v1.engine.llm_engine": [("LLMEngine", "__init__")],
    "vllm.v1.engine.async_llm": [("AsyncLLM", "__init__")],
}


def _refuse(what: str) -> Callable[..., None]:
    def refused(*args: object, **kwargs: object) -> None:
        pytest.fail(f"{what} in the fast tier (tests/unit/): tests that start Ray, a vLLM engine or a child process "
                    "belong in tests/, the full tier", pytrace=True)

    return refused


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches the vLLM engine classes of VLLM_ENGINE_ENTRY_POINTS right after their module is first imported."""

    def __init__(self, patch: Callable[[object], None]) -> None:
        self.patch = patch

    def find_spec(self, fullname, path, target=None):
        if fullname not in VLLM_ENGINE_ENTRY_POINTS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader, patch = spec.loader, self.patch

        class Loader(importlib.abc.Loader):
            def __getattr__(self, name):  # get_source, get_filename, ...: the real loader's
                return getattr(loader, name)

            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                patch(module)

        spec.loader = Loader()
        return spec


@contextlib.contextmanager
def forbid_ray_vllm_and_processes() -> Iterator[None]:
    import ray
    import ray._private.worker

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", _refuse("subprocess.Popen"))
        mp.setattr(multiprocessing.process.BaseProcess, "start", _refuse("a multiprocessing process start"))
        mp.setattr(ray, "init", _refuse("ray.init"))
        mp.setattr(ray._private.worker, "init", _refuse("ray.init"))

        def patch_vllm(module: object) -> None:
            for cls, method in VLLM_ENGINE_ENTRY_POINTS[module.__name__]:
                mp.setattr(getattr(module, cls), method, _refuse(f"building a vLLM engine ({cls})"))

        for name in VLLM_ENGINE_ENTRY_POINTS:
            if name in sys.modules:
                patch_vllm(sys.modules[name])
        hook = _PatchOnImport(patch_vllm)
        sys.meta_path.insert(0, hook)
        try:
            yield
        finally:
            sys.meta_path.remove(hook)


# Item hooks of a conftest apply to the items under its directory only, so the full tier is untouched. Teardown is
# left alone: the last item's teardown also ends session fixtures (the shared Ray) that the full tier started.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with forbid_ray_vllm_and_processes():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with forbid_ray_vllm_and_processes():
        return (yield)

