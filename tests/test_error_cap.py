"""`max_error_rate`: a sweep whose result rows are mostly errors stops instead of running to the end.

For real: a generated 150-pair file suite (300 result rows per scorer, 20 per unit), the `length` baseline and the
`test-faulty` test aid (tests/fault_kinds.py) told to raise on every item, so every one of its rows is an error
row. Through the CLI with `max_error_rate: 0.3` the sweep stops with exit 1 and a message naming the cap, the rate,
the worst model and its commonest error and how to raise the cap; what was written is in the store, verified and
readable. A rerun with the cap raised and `--keep-errors` resumes from it and finishes, error rows included
(without the flag it would redo them too: tests/test_redo.py). In process: with the cap off (null) the same sweep
finishes; fewer than ERROR_CAP_MIN_ROWS rows never stop a sweep. Per model: among healthy models, one that fails
on every item is stopped once it has ERROR_CAP_MIN_ROWS rows while the others finish, and a model that cannot load
(a UserError subclass that never says "UserError") is reported by type. The counting and the message are checked on
their own too (ErrorTally, tests/unit/test_error_cap.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rmorch.orchestrator.schedule.error_cap import ERROR_CAP_MIN_ROWS
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.sweep import run_sweep
from tests.conftest import REPO
from tests.fault_kinds import KIND as FAULTY  # importing it registers the test-faulty kind

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_error_cap.py

N_ITEMS = 150
SHARD = 10  # items per unit: 15 units per model, 20 result rows each
UNITS = 2 * N_ITEMS // SHARD


def _suite_file(path: Path, n: int = N_ITEMS) -> Path:
    rows = [{"id": f"q{i}", "q": f"Question {i}?", "good": "a fine answer " * (1 + i % 3), "bad": "no"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _doc(out: Path, data: Path, n: int = N_ITEMS, **top: Any) -> dict[str, Any]:
    return {"seed": 0, "out": str(out), "shard_size": SHARD, "resamples": 0, **top,
            "suites": [{"name": "prefs", "kind": "file", "data": str(data),
                        "columns": {"prompt": "q", "chosen": "good", "rejected": "bad", "id": "id"}}],
            "models": ["length", {"name": "faulty", "kind": FAULTY, "raise_on": [f"q{i}" for i in range(n)]}]}


def _rmorch(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with the test-faulty kind registered (the driver and its Ray workers import it)."""
    cmd = [sys.executable, "-c", "import tests.fault_kinds; from rmorch.orchestrator.cli import main; main()", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def _stored(out: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    """The verified manifest entries and every result row they point to (no unusable file allowed)."""
    store = ResultStore(str(out))
    entries = list(store.manifest())
    rows = store.read_results(entries).to_pylist() if entries else []
    assert store.problems == []
    return entries, rows


# ---- through the CLI: stop, then resume with the cap raised -----------------------------------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("error-cap")
    out = tmp / "out"
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump(_doc(out, _suite_file(tmp / "prefs.jsonl"), max_error_rate=0.3)))
    done = _rmorch("sweep", str(spec), "--quiet", "--num-cpus", "2")
    entries, rows = _stored(out)
    return {"tmp": tmp, "out": out, "spec": spec, "done": done, "entries": entries, "rows": rows,
            "run": json.loads((out / "run.json").read_text())}


def test_stops_with_a_clear_message_and_exit_1(stopped: dict[str, Any]) -> None:
    done = stopped["done"]
    where = f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 1, where
    assert "Traceback" not in done.stderr, where
    err = " ".join(done.stderr.split())
    for needle in ("sweep stopped:", "above max_error_rate 0.3", f"checked from {ERROR_CAP_MIN_ROWS} rows on",
                   "worst model faulty:", "commonest error, in", "ValueError: poison item in batch",
                   "a rerun resumes", "--max-error-rate", "max_error_rate:", "rmorch status"):
        assert needle in err, f"{needle!r} missing\n{where}"
    assert "then length" not in err  # only models with error rows are named
    print(done.stderr)


def test_stopped_early_and_the_store_is_consistent(stopped: dict[str, Any]) -> None:
    stop = stopped["run"]["last_run"]["stopped"]
    assert stop["max_error_rate"] == 0.3 and stop["rows"] >= ERROR_CAP_MIN_ROWS
    assert stop["error_rows"] > 0.3 * stop["rows"]
    assert [m["model"] for m in stop["models"]] == ["faulty"]
    worst = stop["models"][0]
    assert worst["error_rows"] == worst["rows"] and worst["top_error_rows"] == worst["error_rows"]
    entries, rows = stopped["entries"], stopped["rows"]
    assert 0 < len(entries) < UNITS  # stopped before the end; what was written is there
    assert len(rows) == sum(e.n_rows for e in entries) == stop["rows"]  # exactly the rows the cap counted
    assert sum(e.n_errors for e in entries) == stop["error_rows"]
    assert all(r["error"] is None for r in rows if r["model"] == "length")
    assert all(r["error"] and r["score"] is None for r in rows if r["model"] == "faulty")
    # every replica was shut down
    replicas = stopped["run"]["last_run"]["replicas"]
    assert replicas and all(r.get("released_at") for r in replicas)


def test_status_counts_the_units_not_done(stopped: dict[str, Any]) -> None:
    done = _rmorch("status", str(stopped["out"]), "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["units_done"] == len(stopped["entries"]) < status["units_planned"] == UNITS
    assert status["stopped"]["error_rows"] == stopped["run"]["last_run"]["stopped"]["error_rows"]
    text = _rmorch("status", str(stopped["out"])).stdout
    assert "stopped early" in text and "max_error_rate 0.3" in text


def test_rerun_with_the_cap_raised_resumes_and_finishes(stopped: dict[str, Any]) -> None:
    done = _rmorch("sweep", str(stopped["spec"]), "--quiet", "--num-cpus", "2", "--max-error-rate", "1",
                   "--keep-errors")
    assert done.returncode == 0, done.stderr[-3000:]
    n_before = len(stopped["entries"])
    assert f"{UNITS} units planned, {n_before} already in the store" in " ".join(done.stdout.split())
    before = {e.key: e.sha256 for e in stopped["entries"]}
    entries, rows = _stored(stopped["out"])
    assert len(entries) == UNITS and all(e.sha256 == before[e.key] for e in entries if e.key in before)
    assert len(rows) == 2 * 2 * N_ITEMS
    assert sum(r["error"] is not None for r in rows) == 2 * N_ITEMS  # all of faulty's
    run = json.loads((stopped["out"] / "run.json").read_text())
    assert run["last_run"]["stopped"] is None and run["last_run"]["units_skipped"] == n_before
    assert run["last_run"]["errors_redone"] == 0 and yaml.safe_load((stopped["out"] / "spec.yaml").read_text())[
        "keep_errors"] is True
    board = {e["model"]: e for e in json.loads((stopped["out"] / "leaderboard.json").read_text())}
    assert board["faulty"]["n_errors"] == N_ITEMS and board["length"]["n_errors"] == 0


# ---- per model: one broken model stops, the others finish -----------------------------------------------------------


def test_a_model_over_the_cap_is_stopped_alone_and_the_others_finish(tmp_path: Path) -> None:
    """The default cap (0.5) per model: `broken` raises on every item, so once it has ERROR_CAP_MIN_ROWS rows (10
    units) it is stopped; its delay keeps its errors below half of the sweep's rows (the sweep-wide cap never trips).
    `unloadable` fails to load with a UserError subclass whose text never says "UserError": recognised by type."""
    out = tmp_path / "out"
    doc = _doc(out, _suite_file(tmp_path / "prefs.jsonl"))
    doc["models"] = ["length", {"name": "healthy", "kind": FAULTY},
                     {"name": "broken", "kind": FAULTY, "raise_on": [f"q{i}" for i in range(N_ITEMS)], "delay_s": 0.05},
                     {"name": "unloadable", "kind": FAULTY, "fail_load": "the weights are missing here"}]
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    done = _rmorch("sweep", str(spec), "--quiet", "--num-cpus", "2")
    where = f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 1 and "Traceback" not in done.stderr, where
    err = " ".join(done.stderr.split())
    for needle in ("model broken stopped: 200 of its 200 result rows", "above max_error_rate 0.5",
                   "ValueError: poison item in batch", "the other models went on",
                   "model unloadable did not run: the weights are missing here"):
        assert needle in err, f"{needle!r} missing\n{where}"
    assert "sweep stopped:" not in err, where
    last = json.loads((out / "run.json").read_text())["last_run"]
    assert last["stopped"] is None and set(last["stopped_models"]) == {"broken"}, last
    stop = last["stopped_models"]["broken"]
    assert stop["rows"] == stop["error_rows"] == ERROR_CAP_MIN_ROWS and stop["max_error_rate"] == 0.5
    assert stop["top_error"].startswith("ValueError: poison item in batch")
    assert last["failed_models"] == {"unloadable": "the weights are missing here"}
    assert all(r.get("released_at") for r in last["replicas"])
    entries, rows = _stored(out)
    units = {m: sum(e.model == m for e in entries) for m in ("length", "healthy", "broken", "unloadable")}
    per_model = N_ITEMS // SHARD
    assert units == {"length": per_model, "healthy": per_model, "broken": ERROR_CAP_MIN_ROWS // (2 * SHARD),
                     "unloadable": 0}, units
    assert all((r["error"] is not None) == (r["model"] == "broken") for r in rows)
    assert "stopped: broken" in (out / "report.html").read_text(encoding="utf-8")
    status = _rmorch("status", str(out), "--json")
    assert status.returncode == 0 and set(json.loads(status.stdout)["stopped_models"]) == {"broken"}, status.stderr


# ---- in process ---------------------------------------------------------------------------------------------------


def test_with_the_cap_off_the_sweep_finishes(local_ray, tmp_path: Path) -> None:
    result = run_sweep(spec_from_dict(_doc(tmp_path / "out", _suite_file(tmp_path / "prefs.jsonl"),
                                           max_error_rate=None)))
    assert result.ok and result.stopped is None
    assert result.stats.error_rows == 2 * N_ITEMS and len(result.stats.computed) == UNITS


def test_fewer_rows_than_the_minimum_never_stop(local_ray, tmp_path: Path) -> None:
    n = 20  # 80 rows, half of them errors: above the default cap of 0.5 at times, but below the minimum
    doc = _doc(tmp_path / "out", _suite_file(tmp_path / "prefs.jsonl", n), n)
    doc["models"] = doc["models"][1:]  # faulty alone: every row an error
    result = run_sweep(spec_from_dict(doc))
    assert result.stopped is None and result.ok
    assert result.stats.error_rows == 2 * n
