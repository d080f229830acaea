"""Sequence-classifier RMs through real transformers: tokenisation policy, batching, and a sweep on local Ray."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_classifier.py


@pytest.mark.slow
def test_classifier_sweep_on_local_ray(local_ray, tiny_classifier, rewardbench_file, tmp_path):
    spec = spec_from_dict({
        "seed": 0,
        "out": str(tmp_path / "out"),
        "shard_size": 16,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 4}],
        "models": [{"name": "tiny-rm", "kind": "classifier", "path": tiny_classifier, "dtype": "float32",
                    "max_length": 512, "batch_tokens": 4096, "replicas": 2}],
    })
    result = run_sweep(spec)
    assert result.ok
    assert result.stats.loads == {"tiny-rm": 2}  # two replicas, each loaded once, pulling from one queue
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert board[0]["model"] == "tiny-rm" and board[0]["n_items"] == 92 and board[0]["n_errors"] == 0
    rows = pq.read_table(tmp_path / "out" / "results" / "tiny-rm").to_pylist()
    assert len(rows) == 184
    r = rows[0]
    assert (r["backend"], r["dtype"], r["max_length"], r["truncation_side"], r["chat_template"], r["seed"]) == (
        "transformers", "float32", 512, "left", "tokenizer", 0)
    assert any(r["truncated"] for r in rows) and all(r["n_tokens"] <= 512 for r in rows)

    # Same spec, fresh store, one replica and another shard size: the same numbers.
    spec2 = spec_from_dict({**spec.to_dict(), "out": str(tmp_path / "out2"), "shard_size": 7})
    spec2 = spec_from_dict({**spec2.to_dict(), "models": [{**spec2.to_dict()["models"][0], "replicas": 1}]})
    run_sweep(spec2)
    rows2 = pq.read_table(tmp_path / "out2" / "results" / "tiny-rm").to_pylist()
    a = {(r["item_id"], r["candidate"]): r["score"] for r in rows}
    b = {(r["item_id"], r["candidate"]): r["score"] for r in rows2}
    assert a.keys() == b.keys()
    assert all(abs(a[k] - b[k]) < 1e-4 for k in a)


@pytest.mark.slow
def test_a_model_that_cannot_load_is_skipped_and_reported(local_ray, rewardbench_file, tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "README").write_text("no weights here")
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 2}],
        "models": ["length", {"name": "broken", "kind": "classifier", "path": str(not_a_model)}],
    })
    result = run_sweep(spec)
    assert not result.ok and set(result.stats.failed_models) == {"broken"}
    assert "has no config.json" in result.stats.failed_models["broken"]
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    assert [e["model"] for e in board] == ["length"] and board[0]["n_items"] == 46
