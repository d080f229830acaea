"""Replica process reuse (`reuse_processes`, rmorch.orchestrator.schedule.scheduler + ModelWorker.reload): a replica whose model is
done leaves its process to the next model of the same shape, which loads there instead of in a new process. Real
Ray (2 logical GPUs), real tiny transformers classifiers with different weights."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep
from tests.tiny_models import build_tiny_classifier

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_process_reuse.py


@pytest.fixture(scope="module")
def three_classifiers(tmp_path_factory) -> list[str]:
    return [build_tiny_classifier(str(tmp_path_factory.mktemp(f"rm{seed}")), seed=seed) for seed in (0, 1, 2)]


def _sweep(out, rewardbench_file, models, reuse: bool):
    spec = spec_from_dict({
        "out": str(out), "seed": 0, "shard_size": 16, "resamples": 0, "reuse_processes": reuse,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 2}],
        # 2 GPUs each on a 2-GPU node: one replica at a time, every one of the same shape
        "models": [{"name": name, "kind": "classifier", "path": path, "dtype": "float32", "max_length": 256,
                    "num_gpus": 2} for name, path in models],
    })
    result = run_sweep(spec)
    last = json.loads((out / "run.json").read_text())["last_run"]
    return result, last


def _scores(out, model):
    return {(r["item_id"], r["candidate"]): r["score"] for r in pq.read_table(out / "results" / model).to_pylist()}


@pytest.mark.slow
def test_models_load_in_one_reused_process_and_score_as_in_their_own(local_ray, rewardbench_file, three_classifiers,
                                                                     tmp_path):
    models = list(zip(["a-rm", "b-rm", "c-rm"], three_classifiers))
    reused, last = _sweep(tmp_path / "reuse", rewardbench_file, models, reuse=True)
    assert reused.ok
    assert last["processes_started"] == 1 and last["reloads"] == 2
    assert len({r["pid"] for r in last["replicas"]}) == 1
    assert sorted(r["reused_process"] for r in last["replicas"]) == [False, True, True]
    assert last["loads"] == {"a-rm": 1, "b-rm": 1, "c-rm": 1}

    fresh, last = _sweep(tmp_path / "fresh", rewardbench_file, models, reuse=False)
    assert fresh.ok and last["processes_started"] == 3 and last["reloads"] == 0
    assert len({r["pid"] for r in last["replicas"]}) == 3
    for name, _ in models:  # each model's own weights, bit for bit, whichever process it loaded in
        assert _scores(tmp_path / "reuse", name) == _scores(tmp_path / "fresh", name)
    assert _scores(tmp_path / "reuse", "a-rm") != _scores(tmp_path / "reuse", "b-rm")


@pytest.mark.slow
def test_a_model_that_cannot_load_in_a_reused_process_is_reported_and_the_sweep_goes_on(
        local_ray, rewardbench_file, three_classifiers, tmp_path):
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "README").write_text("no weights here")
    models = [("a-rm", three_classifiers[0]), ("b-broken", str(broken)), ("c-rm", three_classifiers[2])]
    result, last = _sweep(tmp_path / "out", rewardbench_file, models, reuse=True)
    assert not result.ok and set(result.stats.failed_models) == {"b-broken"}
    assert "has no config.json" in result.stats.failed_models["b-broken"]
    assert last["loads"] == {"a-rm": 1, "c-rm": 1}
    assert last["reloads"] >= 1  # b-broken was tried in a-rm's process; c-rm then started in a new one
    assert len(_scores(tmp_path / "out", "c-rm")) == 2 * 46
