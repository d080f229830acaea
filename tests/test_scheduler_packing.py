"""The scheduler's packing: which replicas start, where and when (correctness only; speed is bench/scheduler.py).

The policy itself (rmorch.orchestrator.schedule.placement) is a pure function, checked on hand-made snapshots. The real-Ray test runs
simulated models (bench/simulated_model.py: loads and scoring sleep) through the whole pipeline on one local Ray
node with 8 logical GPUs: a tensor-parallel-4 model and six 1-GPU models, more than fit at once.
"""

from __future__ import annotations

import json
import os
import pathlib

import pyarrow.parquet as pq
import pytest

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_scheduler_packing.py

REPO = pathlib.Path(__file__).resolve().parent.parent


# ---- the real thing ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_8_gpus():
    """A local Ray node of our own (never a cluster another process started) with 8 logical GPUs; its workers
    can import the simulated kind from bench/."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), old) if p)
    ray.init(address="local", num_cpus=4, num_gpus=8, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    yield ray
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def _spec(out: pathlib.Path, data: pathlib.Path, replicas):
    import bench.simulated_model  # noqa: F401  (registers the kind)
    from rmorch.orchestrator.spec.parse import spec_from_dict

    common = {"kind": "simulated", "load_seconds": 0.3, "seconds_per_token_b": 2e-6, "num_cpus": 0.25,
              "replicas": replicas}
    models = [{"name": "tp4", "size_b": 8.0, "tensor_parallel_size": 4, **common}]
    models += [{"name": f"one-{i}", "size_b": float(2 + i), **common} for i in range(6)]
    return spec_from_dict({
        "seed": 0, "out": str(out), "shard_size": 4, "resamples": 0, "models": models,
        "suites": [{"name": "prefs", "kind": "file", "data": str(data),
                    "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}}],
    })


def _scores(out: pathlib.Path) -> dict[tuple[str, str, int], float]:
    rows = pq.read_table(out / "results").to_pylist()
    keyed = {(r["model"], r["item_id"], r["candidate"]): r["score"] for r in rows}
    assert len(keyed) == len(rows), "duplicate result rows"
    return keyed


@pytest.mark.slow
def test_packing_on_8_gpus_matches_one_replica_per_model(ray_8_gpus, tmp_path):
    from rmorch.orchestrator.sweep import run_sweep

    data = tmp_path / "prefs.jsonl"
    with data.open("w") as f:
        for i in range(40):
            f.write(json.dumps({"prompt": "p" * (200 + 37 * i), "chosen": "c" * (300 + 11 * i),
                                "rejected": "r" * (250 + 13 * i)}) + "\n")
    result = run_sweep(_spec(tmp_path / "auto", data, "auto"))
    assert result.ok, result.stats.failed_models
    assert len(result.stats.computed) == result.n_units == 7 * 10
    replicas = result.stats.replicas
    # loads counted: one per replica that came up, every model at least once
    assert sum(result.stats.loads.values()) == len(replicas)
    assert set(result.stats.loads) == {"tp4"} | {f"one-{i}" for i in range(6)}

    # every replica fits: at no moment does the scheduler hold more than the node's 8 GPUs
    events = sorted([(r["requested_at"], r["gpus"]) for r in replicas] + [(r["released_at"], -r["gpus"])
                                                                          for r in replicas])
    held = 0.0
    for _, delta in events:
        held += delta
        assert held <= 8 + 1e-9

    # the tensor-parallel model is not starved: requested first, in one STRICT_PACK group of 4 GPU bundles
    tp = [r for r in replicas if r["model"] == "tp4"]
    assert min(r["requested_at"] for r in tp) == min(r["requested_at"] for r in replicas)
    for r in tp:
        pg = r["placement_group"]
        assert pg["strategy"] == "STRICT_PACK" and len(pg["nodes"]) == 1
        assert [b.get("GPU") for b in pg["bundles"]] == [1.0] * 4

    # more GPUs wanted than the node has: replicas were released and their GPUs went to replicas started later
    assert sum(r["gpus"] for r in replicas) > 8
    assert any(b["requested_at"] >= a["released_at"] for a in replicas for b in replicas if a is not b)
    assert all(len(r["gpu_ids"]) == 1 for r in replicas if r["model"] != "tp4")

    run = json.loads((tmp_path / "auto" / "run.json").read_text())["last_run"]
    assert 0.0 <= run["gpu_idle_fraction"] < 1.0 and run["gpus"] == 8
    assert set(run["model_wall_seconds"]) == set(result.stats.loads)
    assert run["gpu_seconds"]["working"] <= run["gpu_seconds"]["held"] <= run["gpu_seconds"]["total"] + 1e-6

    # the same sweep with one replica per model gives exactly the same results
    one = run_sweep(_spec(tmp_path / "one", data, 1))
    assert one.ok and one.stats.loads == {m: 1 for m in result.stats.loads}
    assert _scores(tmp_path / "one") == _scores(tmp_path / "auto")
