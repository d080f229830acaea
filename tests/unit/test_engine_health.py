"""Dead and hung engines (rmorch.actors.engine_health) and the unit timeout (rmorch.orchestrator.schedule.scheduler):
the pure parts. The real faults, on real processes: tests/test_faults.py (a replica that raises EngineDeadError or
hangs, on a multi-node cluster) and tests/test_judge_determinism.py (a real vLLM engine core SIGKILLed or SIGSTOPped
mid-sweep)."""

from __future__ import annotations

import threading
import time

import pytest

from rmorch.actors.engine_health import EngineFailure, Watchdog, is_engine_failure
from rmorch.actors.worker import ModelWorker
from rmorch.orchestrator.schedule.scheduler import (
    UNIT_TIMEOUT_FLOOR_S,
    UNIT_TIMEOUT_UNMEASURED_S,
    unit_timeout,
)


class EngineDeadError(RuntimeError):  # vLLM's name (vllm.v1.engine.exceptions)
    pass


class AcceleratorError(RuntimeError):  # torch's name for CUDA errors (torch >= 2.8)
    pass


@pytest.mark.parametrize("error", [
    EngineDeadError("EngineCore encountered an issue"),
    AcceleratorError("anything"),
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    RuntimeError("CUDA error: device-side assert triggered"),
    EngineFailure("already classified"),
])
def test_dead_engines_and_poisoned_devices_are_engine_failures(error):
    assert is_engine_failure(error)
    try:  # found through the chain too (an exception raised while handling one)
        try:
            raise error
        except Exception as inner:
            raise ValueError("wrapper") from inner
    except ValueError as outer:
        assert is_engine_failure(outer)


@pytest.mark.parametrize("error", [
    ValueError("poison item in batch"),
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),  # recoverable: bisecting helps
    RuntimeError("prompt is longer than max_model_len"),
])
def test_request_failures_are_not_engine_failures(error):
    assert not is_engine_failure(error)


class _Model:
    def __init__(self, error: Exception):
        self.error, self.calls = error, 0

    def score(self, reqs):
        self.calls += 1
        raise self.error


def _worker(error: Exception) -> ModelWorker:
    worker = ModelWorker.__new__(ModelWorker)  # no model loaded: only the isolation logic is under test
    worker.model = _Model(error)
    worker.spec = type("S", (), {"kind": "k"})()
    return worker


def test_a_request_failure_is_bisected_into_one_error_row_per_request():
    worker = _worker(ValueError("bad item"))
    outcomes = worker._score_isolating(list(range(8)))
    assert [o.error for o in outcomes] == ["ValueError: bad item"] * 8
    assert worker.model.calls == 15  # 8 + 4 + 2 + 1 batches: bisected down to single requests


def test_an_engine_failure_fails_the_unit_at_once_never_bisected():
    worker = _worker(EngineDeadError("EngineCore encountered an issue"))
    with pytest.raises(EngineFailure, match="EngineDeadError"):
        worker._score_isolating(list(range(8)))
    assert worker.model.calls == 1


def test_watchdog_fires_once_when_an_armed_deadline_passes_and_not_when_disarmed():
    fired: list[str] = []
    done = threading.Event()

    def on_fault(why: str) -> None:
        fired.append(why)
        done.set()

    watch = Watchdog([], on_fault, "model m")
    try:
        watch.arm(0.2)
        watch.disarm()  # the unit finished in time
        time.sleep(0.8)
        assert fired == []
        watch.arm(0.2)
        assert done.wait(3.0)
        assert fired == ["a unit of model m passed its deadline of 0.2s (unit_timeout_s)"]
    finally:
        watch.stop()


def test_unit_timeout_from_the_spec_or_the_measured_rate():
    assert unit_timeout(30, 5.0) == 30.0 and unit_timeout(None, 5.0) is None
    assert unit_timeout("auto", None) == UNIT_TIMEOUT_UNMEASURED_S  # nothing of the model measured yet
    assert unit_timeout("auto", 1.0) == UNIT_TIMEOUT_FLOOR_S  # a fast unit: the floor
    assert unit_timeout("auto", 60.0) == 20 * 60.0  # a slow one: 20x what it should take

