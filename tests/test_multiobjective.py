"""Multi-objective reward models: every output kept in `scores`, the scalar chosen by `objective`, on a real tiny
3-output Llama classifier, in-process against the model's own logits and through the pipeline."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep
from tests.unit import test_multiobjective as fast

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_multiobjective.py
three_head = fast.three_head  # a fixture shared with the fast tier


@pytest.mark.slow
def test_multiobjective_through_the_pipeline(local_ray, three_head, rewardbench_file, tmp_path):
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [{"name": "mo", "kind": "classifier", "path": three_head, "objective": "mean",
                    "max_length": 512, "batch_tokens": 4096}],
    })
    assert run_sweep(spec).ok
    rows = pq.read_table(tmp_path / "out" / "results" / "mo").to_pylist()
    assert len(rows) == 46 and all(len(r["scores"]) == 3 for r in rows)
    assert all(r["score"] == pytest.approx(sum(r["scores"]) / 3, abs=1e-5) for r in rows)
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert board[0]["n_items"] == 23 and board[0]["n_errors"] == 0
