"""Shared fixtures. Tests run offline (no hub), on real Ray, real transformers and the real data in ../shared."""

from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    assert SHARED_DATA.is_dir(), f"../shared/data must sit beside the repository ({SHARED_DATA})"
    return SHARED_DATA


@pytest.fixture(scope="session")
def rewardbench_file(shared_data: pathlib.Path) -> pathlib.Path:
    return shared_data / "rewardbench" / "filtered.jsonl"


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance per test module, with 2 logical GPUs so placement takes the real GPU code path."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> str:
    from tests.tiny_models import build_tiny_classifier

    return build_tiny_classifier(str(tmp_path_factory.mktemp("tiny-classifier")), seed=0)


@pytest.fixture
def browser(tmp_path: pathlib.Path):
    """A headless Chromium for the test (tests/chromium.py); fails the test if chromium is not installed."""
    from tests.chromium import Chromium, find_chromium

    chromium = Chromium(find_chromium(), tmp_path / "profile")
    yield chromium
    chromium.close()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Exit with pytest's own status once everything is reported, skipping interpreter finalisation.

    Workaround: after all tests passed, one clean-clone run segfaulted (exit 139) while native extensions (vLLM's
    engine core, Ray) were torn down at interpreter exit. Results and the exit status are final at this point;
    the root cause is still open (see the issue note)."""
    import sys

    status = getattr(config, "_rmorch_exitstatus", None)
    sys.stdout.flush()
    sys.stderr.flush()
    if status is not None:
        os._exit(int(status))


def pytest_sessionfinish(session, exitstatus):
    session.config._rmorch_exitstatus = exitstatus
