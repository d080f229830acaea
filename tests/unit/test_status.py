"""`rmorch status` names the models stopped by the per-model error cap and the replicas lost and replaced
(run.json `last_run.stopped_models` and `last_run.replaced`), in its JSON and its text. The store is built by hand:
the sweep's own plan and run-record writers, no results needed."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner

from rmorch.orchestrator.cli import main
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import LastRun, RunRecord, write_run
from rmorch.orchestrator.store.status import read_status, replaced_replicas, stopped_model, write_plan

STOP = {"max_error_rate": 0.5, "rows": 200, "error_rows": 180,
        "top_error": "ValueError: poison item in batch", "top_error_rows": 170}
REPLACED = {"vjudge": ["engine died: EngineDeadError: EngineCore encountered an issue",
                       "unit timed out after 30s (unit_timeout_s)",
                       "engine died: EngineDeadError: EngineCore encountered an issue"],
            "rm": ["replica died: The actor died unexpectedly before finishing this task."]}


def _store(out: Path, run_id: str = "r1", last: LastRun | None = None) -> str:
    units = [SimpleNamespace(model=m, suite="rewardbench", key=f"{m}-{i}", tokens=100.0, cost=1.0, n_requests=4)
             for m in ("broken", "vjudge", "rm") for i in range(2)]
    store = ResultStore(str(out))
    write_plan(store, "r1", "2026-12-06T10:00:00+0000", units)
    write_run(store, RunRecord(run_id=run_id, last_run=last))
    return str(out)


def test_stopped_models_and_replaced_replicas_in_json_and_text(tmp_path: Path) -> None:
    out = _store(tmp_path / "out", last=LastRun(stopped_models={"broken": STOP}, replaced=REPLACED))
    st = read_status(out)
    assert st.finished and st.stopped is None
    assert st.stopped_models == {"broken": STOP} and st.replaced == REPLACED
    data = json.loads(json.dumps(st.to_dict()))
    assert data["stopped_models"] == {"broken": STOP} and data["replaced"] == REPLACED

    note = stopped_model("broken", STOP)
    assert note.startswith("model broken stopped: 180 of 200 result rows were errors (90.0 %), above "
                           "max_error_rate 0.5; top error (in 170 rows): ValueError: poison item in batch"), note
    assert "a rerun resumes" in note
    assert replaced_replicas("vjudge", REPLACED["vjudge"]) == (
        "model vjudge: 3 replicas replaced (engine died: EngineDeadError: EngineCore encountered an issue x 2; "
        "unit timed out after 30s (unit_timeout_s))")
    assert replaced_replicas("rm", REPLACED["rm"]).startswith("model rm: 1 replica replaced (replica died: ")
    many = replaced_replicas("m", [f"unit timed out after {s}s (unit_timeout_s)" for s in range(5)])
    assert many.startswith("model m: 5 replicas replaced (") and many.endswith("; 2 other reasons)"), many

    done = CliRunner().invoke(main, ["status", out, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["stopped_models"]["broken"]["error_rows"] == 180
    done = CliRunner().invoke(main, ["status", out])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())  # stdout and stderr, unwrapped
    assert " ".join(note.split()) in text, text
    assert "model vjudge: 3 replicas replaced (engine died:" in text and "model rm: 1 replica replaced" in text


def test_an_earlier_runs_stops_and_replacements_are_not_shown(tmp_path: Path) -> None:
    """run.json of another run than plan.json's (the planned run is still going, or was killed): nothing of it."""
    out = _store(tmp_path / "out", run_id="r0", last=LastRun(stopped_models={"broken": STOP}, replaced=REPLACED))
    st = read_status(out)
    assert not st.finished and st.stopped_models == {} and st.replaced == {}
    done = CliRunner().invoke(main, ["status", out])
    assert done.exit_code == 0, done.output
    assert "model broken stopped" not in done.output and "replaced" not in done.output


def test_a_partial_stop_record_still_reads(tmp_path: Path) -> None:
    """A store of another rmorch version may lack some fields: the note says what it can."""
    assert stopped_model("x", {"max_error_rate": 0.3}) == (
        "model x stopped, above max_error_rate 0.3; its remaining units were not run (a rerun resumes them)")
    out = _store(tmp_path / "out", last=LastRun())
    st = read_status(out)
    assert st.finished and st.stopped_models == {} and st.replaced == {}
