"""Resume: a sweep killed mid-way (SIGKILL, the whole process group: driver and its Ray instance) loses nothing
that was finished; the rerun computes exactly the missing units; a third run loads no model at all."""

from __future__ import annotations

import json
import os
import shutil
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


@pytest.mark.slow
def test_a_model_retrained_in_place_is_scored_again(local_ray, tiny_classifier, rewardbench_file, tmp_path):
    """Provenance decides reuse (rmorch.orchestrator.plan.provenance): new weights at the same path, same spec,
    make the model's units new; only they are computed, nothing of the old weights is reused from the score cache,
    the leaderboard reads the new rows only, and `rmorch status` says the store holds two identities."""
    from click.testing import CliRunner

    from rmorch.orchestrator.cli import main
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep
    from tests.tiny_models import build_tiny_classifier

    def spec(out, model):
        return spec_from_dict({
            "seed": 0, "out": str(out), "shard_size": 16, "resamples": 0,
            "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
            "models": [{"name": "rm", "kind": "classifier", "path": str(model), "dtype": "float32",
                        "max_length": 256, "batch_tokens": 2048}, "length"]})

    def leaderboard(out):
        return {e["model"]: e for e in json.loads((out / "leaderboard.json").read_text())}

    model = shutil.copytree(tiny_classifier, tmp_path / "model")
    out = tmp_path / "out"
    assert run_sweep(spec(out, model)).ok
    n_units = json.loads((out / "run.json").read_text())["last_run"]["units_planned"] // 2

    retrained = build_tiny_classifier(str(tmp_path / "retrained"), seed=1)  # same shapes, other weights
    shutil.copyfile(os.path.join(retrained, "model.safetensors"), model / "model.safetensors")
    assert run_sweep(spec(out, model)).ok
    last = json.loads((out / "run.json").read_text())["last_run"]
    assert (last["units_computed"], last["units_skipped"]) == (n_units, n_units)  # rm anew, length resumed
    assert last["requests_from_cache"] == 0 and last["loads"] == {"rm": 1}

    assert run_sweep(spec(tmp_path / "fresh", model)).ok
    now, fresh = leaderboard(out), leaderboard(tmp_path / "fresh")
    assert now["rm"]["score"] == fresh["rm"]["score"] and now["rm"]["subsets"] == fresh["rm"]["subsets"]
    store = ResultStore(str(out))
    by_identity: dict[str, dict[tuple[str, int], float]] = {}
    for r in store.read_results([e for e in store.manifest() if e.model == "rm"]).to_pylist():
        by_identity.setdefault(r["identity"], {})[(r["item_id"], r["candidate"])] = r["score"]
    old, new = by_identity.values()  # the old weights' rows stay in the store, apart
    assert old.keys() == new.keys() and old != new
    assert now["rm"]["other_identities"] == 1 and "other_identities" not in now["length"]
    status = CliRunner().invoke(main, ["status", str(out)])
    assert status.exit_code == 0, status.output
    assert "model rm: the store holds results of 2 identities" in " ".join(status.output.split())
