"""Error rows are redone (rmorch.orchestrator.plan.redo), through the real sweep on real Ray: a first run in which
two items fail (a transient fault: the `test-faulty` test aid raises on them while a file exists) leaves error rows;
with `keep_errors` a rerun computes nothing; a plain rerun sends exactly the failed requests to the models again,
keeps every good row of the first run as it was (the kind logs every request it scores), and ends with no error
row and the rows of a run without the fault. Both a cached kind (`test-faulty`) and a never-cached one
(`test-faulty-uncached`, like length, random and published).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rmorch.orchestrator.plan.units import load_suite
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.status import describe_state, read_status
from rmorch.orchestrator.sweep import run_sweep
from tests.fault_kinds import KIND as FAULTY  # importing it registers the test-faulty kinds
from tests.fault_kinds import KIND_UNCACHED, scored_so_far

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_redo.py

SHARD = 8  # 46 RewardBench items (2 per subset): 6 units per model
MODELS = ("faulty", "uncached")


def _doc(out: Path, data: Path, flag: Path, logs: Path, flaky: list[str], **top: Any) -> dict[str, Any]:
    faults = {"flaky_on": flaky, "flaky_while": str(flag), "log_dir": str(logs), "num_gpus": 1}
    return {"seed": 0, "out": str(out), "shard_size": SHARD, "resamples": 0, **top,
            "suites": [{"name": "rewardbench", "data": str(data), "limit_per_subset": 2}],
            "models": [{"name": "faulty", "kind": FAULTY, **faults},
                       {"name": "uncached", "kind": KIND_UNCACHED, **faults}]}


def _rows(out: Path) -> list[dict[str, Any]]:
    store = ResultStore(str(out))
    rows = store.read_results(sorted(store.manifest(), key=lambda e: e.key)).to_pylist()
    assert store.problems == []
    return rows


def test_error_rows_are_redone_and_only_they(local_ray, rewardbench_file: Path, tmp_path: Path) -> None:
    data, flag, logs, out = rewardbench_file.parent, tmp_path / "flaky", tmp_path / "logs", tmp_path / "out"
    probe = spec_from_dict(_doc(out, data, flag, logs, []))
    ids = load_suite(probe.suites[0], probe.seed).index.column("item_id").to_pylist()
    flaky = [ids[1], ids[3 * SHARD + 5]]  # in units 0 and 3
    failed = sorted((m, i, c) for m in MODELS for i in flaky for c in (0, 1))
    flag.touch()
    doc = _doc(out, data, flag, logs, flaky)

    first = run_sweep(spec_from_dict(doc))
    assert first.ok and first.stats.error_rows == len(failed) == 8 and first.errors_redone == 0
    rows1 = _rows(out)
    assert sorted((r["model"], r["item_id"], r["candidate"]) for r in rows1 if r["error"]) == failed
    assert all("flaky item in batch" in r["error"] for r in rows1 if r["error"])
    status = read_status(str(out))
    assert status.finished and status.units_with_errors == status.units_pending == 4
    assert "4 units pending (4 with error rows to redo)" in describe_state(status)
    n_scored = len(scored_so_far(str(logs)))
    assert n_scored == len(rows1) - len(failed)  # every good request once
    flag.unlink()  # the fault is gone

    kept = run_sweep(spec_from_dict({**doc, "keep_errors": True}))
    assert kept.ok and kept.stats.computed == [] and kept.stats.loads == {} and kept.n_skipped == kept.n_units == 12
    assert len(scored_so_far(str(logs))) == n_scored and _rows(out) == rows1  # nothing computed, nothing written
    assert ResultStore(str(out)).read_json("run.json")["last_run"]["errors_redone"] == 0

    redone = run_sweep(spec_from_dict(doc))
    assert redone.ok and redone.stats.error_rows == 0 and redone.errors_redone == len(failed)
    assert sorted(scored_so_far(str(logs))[n_scored:]) == failed  # exactly the failed requests, nothing else
    last = ResultStore(str(out)).read_json("run.json")["last_run"]
    assert last["errors_redone"] == len(failed) and last["units_computed"] == 4 and last["units_skipped"] == 8
    rows2 = _rows(out)
    assert len(rows2) == len(rows1) and all(r["error"] is None for r in rows2)
    assert [r for r in rows2 if (r["model"], r["item_id"], r["candidate"]) not in failed] == [
        r for r in rows1 if r["error"] is None]  # the good rows of the first run, as they were
    status = read_status(str(out))
    assert status.units_pending == 0 and status.error_rows == 0 and describe_state(status).startswith("finished:")

    fresh = run_sweep(spec_from_dict(_doc(tmp_path / "fresh", data, flag, tmp_path / "fresh-logs", flaky)))
    assert fresh.ok and fresh.stats.error_rows == 0
    assert _rows(tmp_path / "fresh") == rows2  # row for row (unit keys, scores, flags) a run without the fault
    assert redone.leaderboard == fresh.leaderboard
