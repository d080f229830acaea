"""`max_error_rate`: a sweep whose result rows are mostly errors stops instead of running to the end.

For real: a generated 150-pair file suite (300 result rows per scorer, 20 per unit), the `length` baseline and the
`test-faulty` test aid (tests/fault_kinds.py) told to raise on every item, so every one of its rows is an error
row. Through the CLI with `max_error_rate: 0.3` the sweep stops with exit 1 and a message naming the cap, the rate,
the worst model and its commonest error and how to raise the cap; what was written is in the store, verified and
readable. A rerun with the cap raised resumes from it and finishes, error rows included. In process: with the cap
off (null) the same sweep finishes; fewer than ERROR_CAP_MIN_ROWS rows never stop a sweep. The counting and the
message are checked on their own too (ErrorTally).
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from rmorch.actors.worker import LoadFailure, ModelWorker
from rmorch.core.errors import SpecError, UserError
from rmorch.core.model_spec import ModelSpec
from rmorch.orchestrator.cli import _rate_option
from rmorch.orchestrator.schedule.error_cap import ERROR_CAP_MIN_ROWS, ErrorTally
from rmorch.orchestrator.spec.parse import spec_from_dict
from tests.fault_kinds import KIND as FAULTY  # importing it registers the test-faulty kind
from tests.fault_kinds import LoadRefused

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_error_cap.py


# ---- the counting and the message ---------------------------------------------------------------------------------


def _table(errors: list[str | None]) -> pa.Table:
    return pa.table({"error": pa.array(errors, pa.string())})


def test_tally_counts_over_all_models_and_names_the_worst() -> None:
    tally = ErrorTally(0.5)
    tally.add("good", _table([None] * 150), 0)
    tally.add("bad", _table([f"ValueError: item q{i} failed" for i in range(40)] + ["HTTP 500: x"] * 10), 50)
    assert tally.over_cap() is None  # 200 rows but 25 % errors
    tally.add("worse", _table(["Timeout after 30 s"] * 60 + [None] * 10), 60)
    assert tally.over_cap() is None  # 110 / 270 = 40.7 %
    tally.add("worse", _table(["Timeout after 31 s"] * 100), 100)
    stop = tally.over_cap()
    assert stop is not None and (stop.rows, stop.error_rows) == (370, 210)
    assert [m["model"] for m in stop.models] == ["worse", "bad"]
    assert stop.models[0]["top_error"] == "Timeout after 30 s" and stop.models[0]["top_error_rows"] == 160
    assert stop.models[1]["top_error"] == "ValueError: item q0 failed" and stop.models[1]["top_error_rows"] == 40
    text = stop.message()
    assert "210 of the 370 result rows" in text and "(56.8%)" in text and "max_error_rate 0.5" in text
    assert "worst model worse: 160 error rows of 170 (94%)" in text and "then bad: 50 error rows of 50 (100%)" in text
    assert "`max_error_rate: 0.7`" in text and "--max-error-rate 0.7" in text


def test_tally_needs_the_minimum_and_more_than_the_cap() -> None:
    tally = ErrorTally(0.5)
    tally.add("m", _table(["e"] * (ERROR_CAP_MIN_ROWS - 1)), ERROR_CAP_MIN_ROWS - 1)
    assert tally.over_cap() is None  # all errors, but too few rows
    tally.add("m", _table([None] * (ERROR_CAP_MIN_ROWS - 1)), 0)
    assert tally.over_cap() is None  # exactly the cap is not above it
    tally.add("m", _table(["e"]), 1)
    assert tally.over_cap() is not None
    off = ErrorTally(None)
    off.add("m", _table(["e"] * 1000), 1000)
    assert off.over_cap() is None


def test_one_model_over_the_cap_is_stopped_alone() -> None:
    tally = ErrorTally(0.5)
    tally.add("good", _table([None] * 300), 0)
    tally.add("bad", _table([f"ValueError: item q{i} failed" for i in range(ERROR_CAP_MIN_ROWS - 1)]),
              ERROR_CAP_MIN_ROWS - 1)
    assert tally.model_over_cap("bad") is None  # all errors, but too few rows of its own
    tally.add("bad", _table(["HTTP 500: x"]), 1)
    assert tally.over_cap() is None  # 200 of 500 rows over all models: the sweep goes on
    assert tally.model_over_cap("good") is None
    stop = tally.model_over_cap("bad")
    assert stop is not None and (stop.model, stop.rows, stop.error_rows, stop.max_error_rate) == ("bad", 200, 200, 0.5)
    assert stop.top_error == "ValueError: item q0 failed" and stop.top_error_rows == ERROR_CAP_MIN_ROWS - 1
    text = stop.message()
    assert "model bad stopped: 200 of its 200 result rows" in text and "above max_error_rate 0.5" in text
    assert "ValueError: item q0 failed" in text and "the other models went on" in text


def test_a_model_needs_its_own_minimum_and_more_than_the_cap() -> None:
    tally = ErrorTally(0.5)
    tally.add("m", _table(["e"] * 100 + [None] * 100), 100)
    assert tally.model_over_cap("m") is None  # exactly the cap is not above it
    tally.add("m", _table(["e"]), 1)
    assert tally.model_over_cap("m") is not None
    assert tally.model_over_cap("never-written") is None
    off = ErrorTally(None)
    off.add("m", _table(["e"] * 1000), 1000)
    assert off.model_over_cap("m") is None


# ---- a model that cannot load: a typed LoadFailure, not a text to search ------------------------------------------


def _faulty(**config: object) -> ModelSpec:
    return spec_from_dict({"suites": ["rewardbench"], "models": [{"name": "f", "kind": FAULTY, **config}]}).models[0]


def test_a_load_failure_is_returned_by_type_whatever_its_text() -> None:
    """A UserError subclass whose type name and message never say "UserError": still a LoadFailure, message kept."""
    message = "the weights are missing here"
    with pytest.raises(LoadRefused, match=message):  # used in process, the worker raises as before
        ModelWorker(_faulty(fail_load=message), 0)
    replica = ModelWorker(_faulty(fail_load=message), 0, keep_load_failure=True)  # the scheduler's replicas
    assert replica.ready() == LoadFailure(message)
    healthy = ModelWorker(_faulty(), 0, keep_load_failure=True)
    assert healthy.ready()["model"] == "f"
    assert healthy.reload(_faulty(fail_load=message), 0) == LoadFailure(message)  # in a reused process too
    assert LoadFailure.of(RuntimeError("no memory")) == LoadFailure("RuntimeError: no memory")


def test_spec_key_and_flag() -> None:
    base = {"suites": ["rewardbench"], "models": ["length"]}
    assert spec_from_dict(base).max_error_rate == 0.5
    assert spec_from_dict({**base, "max_error_rate": None}).max_error_rate is None
    assert spec_from_dict({**base, "max_error_rate": 1}).to_dict()["max_error_rate"] == 1
    for bad in (0, -0.1, 1.5, "half", True):
        with pytest.raises(SpecError, match="max_error_rate"):
            spec_from_dict({**base, "max_error_rate": bad})
    assert _rate_option("none") is None and _rate_option("NULL") is None and _rate_option("0.25") == 0.25
    with pytest.raises(UserError, match="--max-error-rate"):
        _rate_option("lots")
