"""Implicit rewards (DPO log-ratio, reference-free sum/avg/norm) on real tiny LMs, against a direct transformers
computation written here, and through the whole pipeline."""

from __future__ import annotations

import json

import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep
from tests.unit import test_implicit as fast

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_implicit.py
lms = fast.lms  # a fixture shared with the fast tier


@pytest.mark.slow
def test_implicit_rewards_through_the_pipeline(local_ray, lms, rewardbench_file, tmp_path):
    policy, ref = lms
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [
            {"name": "dpo", "kind": "implicit", "path": policy, "ref_path": ref, "max_length": 512},
            {"name": "ref-free", "kind": "implicit", "path": policy, "mode": "avg", "max_length": 512},
            {"name": "cdr", "kind": "density_ratio", "path": policy, "weak_path": ref, "max_length": 512},
        ],
    })
    result = run_sweep(spec)
    assert result.ok and result.stats.loads == {"dpo": 1, "ref-free": 1, "cdr": 1}
    board = {e["model"]: e for e in json.loads((tmp_path / "out" / "leaderboard.json").read_text())}
    assert board["dpo"]["n_items"] == 23 and board["dpo"]["n_errors"] == 0
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "out" / "results" / "dpo").to_pylist()
    assert len(rows) == 46 and all(len(r["scores"]) == 2 for r in rows)
    assert all(r["score"] == pytest.approx(r["scores"][0] - r["scores"][1]) for r in rows)
    assert any(r["truncated"] for r in rows)  # some RewardBench items exceed 512 tokens of the tiny tokenizer
    # without a prefix the density ratio of (policy, ref) is the DPO reward of the same pair
    cdr = {(r["item_id"], r["candidate"]): r["score"] for r in
           pq.read_table(tmp_path / "out" / "results" / "cdr").to_pylist()}
    assert all(cdr[(r["item_id"], r["candidate"])] == pytest.approx(r["score"], abs=1e-6) for r in rows)
