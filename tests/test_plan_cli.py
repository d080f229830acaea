"""`rmorch plan --json` before and after a tiny real sweep of the same spec: the store's units are subtracted and
the rates the sweep measured replace the assumptions; `rmorch status --json` carries the rates and an ETA."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import rmorch, write_spec


def test_plan_before_and_after_a_sweep(tmp_path: Path, rewardbench_file: Path, tiny_classifier: str) -> None:
    spec = write_spec(tmp_path / "spec.yaml", {
        "seed": 0, "out": str(tmp_path / "out"), "shard_size": 32, "resamples": 0,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 2}],
        "models": [{"name": "length"},
                   {"name": "tiny", "kind": "classifier", "path": tiny_classifier, "dtype": "float32"}],
    })

    def plan() -> dict:
        p = rmorch("plan", spec, "--gpus", "0", "--json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    before = plan()
    models = {m["name"]: m for m in before["models"]}
    assert all(m["units"] > 0 and m["units_stored"] == 0 and m["can_run"] for m in models.values())
    assert {m["estimate_source"] for m in models.values()} == {"assumed"}
    assert 0 < before["lower_bound_s"] <= before["makespan_s"] and before["gpu_hours"] == 0

    swept = rmorch("sweep", spec, "--quiet", "--num-gpus", "0")
    assert swept.returncode == 0, swept.stderr
    overheads = json.loads((tmp_path / "out" / "run.json").read_text())["overheads"]
    assert overheads["startup_seconds"] > 0 and overheads["report_seconds"] > 0
    assert 0 < overheads["process_seconds"] < 60  # the command's own start before the sweep (imports, spec)

    after = plan()
    done = {m["name"]: m for m in after["models"]}
    for name, m in done.items():
        assert (m["units"], m["units_stored"]) == (0, models[name]["units"])
        assert m["estimate_source"] == "measured"
    assert after["overheads_source"] == "measured" and after["calibrated_from"] == [str(tmp_path / "out")]

    status = rmorch("status", tmp_path / "out", "--json")
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["eta_seconds"] == 0.0
    assert {p["model"]: p["rate_source"] for p in st["progress"]} == {"length": "this run", "tiny": "this run"}


def test_plan_for_the_nodes_of_a_running_ray_cluster(local_ray, tmp_path: Path, rewardbench_file: Path) -> None:
    """--address: the plan is for the live nodes of the cluster it joins (here the local instance, 2 logical GPUs):
    a tensor-parallel model wider than any node cannot run."""
    spec = write_spec(tmp_path / "spec.yaml", {
        "seed": 0, "out": str(tmp_path / "out"), "shard_size": 64,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [{"name": "rm-8b", "kind": "classifier", "path": "org/rm-8B"},
                   {"name": "judge-tp4", "kind": "judge", "path": "org/judge-8B", "tensor_parallel_size": 4,
                    "num_gpus": 4}],
    })
    address = local_ray.get_runtime_context().gcs_address
    p = rmorch("plan", spec, "--address", address, "--json")
    assert p.returncode == 0, p.stderr
    plan = json.loads(p.stdout)
    assert "2 GPUs" in plan["cluster"]
    models = {m["name"]: m for m in plan["models"]}
    assert models["rm-8b"]["can_run"] and models["rm-8b"]["replicas"] == 1
    assert not models["judge-tp4"]["can_run"] and "4 GPU" in models["judge-tp4"]["reason"]
    assert local_ray.is_initialized()  # the planned-for cluster is only read
