"""Resume: a sweep killed mid-way (SIGKILL, the whole process group: driver and its Ray instance) loses nothing
that was finished; the rerun computes exactly the missing units; a third run loads no model at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from rmorch.orchestrator.store.results import ResultStore

RMORCH = os.path.join(os.path.dirname(sys.executable), "rmorch")


def _spec(path, out, data):
    doc = {
        "seed": 3,
        "out": str(out),
        "shard_size": 4,  # ~750 units per model: slow enough to be killed in the middle
        "suites": [{"name": "rewardbench", "data": str(data)}],
        "models": ["length", "random"],
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _scores(out) -> dict[tuple[str, str, int], float]:
    rows = []
    for e in ResultStore(str(out)).manifest():
        rows.extend(pq.read_table(os.path.join(out, e.file)).to_pylist())
    keyed = {(r["model"], r["item_id"], r["candidate"]): r["score"] for r in rows}
    assert len(keyed) == len(rows), "duplicate result rows"
    return keyed


def _run(spec, **kw):
    return subprocess.run([RMORCH, "sweep", str(spec), "--quiet", "--num-cpus", "2"], capture_output=True,
                          text=True, timeout=600, **kw, check=False)


@pytest.mark.slow
def test_killed_sweep_resumes_without_loss_or_recompute(tmp_path, rewardbench_file):
    out = tmp_path / "out"
    spec = _spec(tmp_path / "spec.yaml", out, rewardbench_file.parent)
    proc = subprocess.Popen([RMORCH, "sweep", str(spec), "--quiet", "--num-cpus", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = out / "manifest"
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            n = len(os.listdir(manifest)) if manifest.is_dir() else 0
            if n >= 100:
                break
            assert proc.poll() is None, "the sweep finished before it could be interrupted"
            time.sleep(0.05)
        else:
            pytest.fail("no progress within 180 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    total_units = 2 * ((2985 + 3) // 4)
    finished = ResultStore(str(out)).done_keys()
    assert 100 <= len(finished) < total_units
    partial = _scores(out)  # every finished unit reads back whole

    second = _run(spec)
    assert second.returncode == 0, second.stderr
    last = json.loads((out / "run.json").read_text())["last_run"]
    assert last["units_skipped"] == len(finished)
    assert last["units_computed"] == total_units - len(finished)
    resumed = _scores(out)
    assert len(resumed) == 2 * 2 * 2985
    assert all(resumed[k] == v for k, v in partial.items())  # nothing finished was recomputed differently

    # The same spec in a fresh directory gives the same numbers: interruption changed nothing.
    fresh_spec = _spec(tmp_path / "fresh.yaml", tmp_path / "fresh", rewardbench_file.parent)
    assert _run(fresh_spec).returncode == 0
    assert _scores(tmp_path / "fresh") == resumed
    assert json.loads((tmp_path / "fresh" / "leaderboard.json").read_text()) == json.loads(
        (out / "leaderboard.json").read_text()
    )

    third = _run(spec)
    assert third.returncode == 0
    last = json.loads((out / "run.json").read_text())["last_run"]
    assert last["units_computed"] == 0 and last["loads"] == {}
    assert "0 computed" in third.stdout
