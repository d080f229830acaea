"""Pairwise preference models (PairRM-style cross-encoders) on a real tiny classifier: both orders averaged, checked
against the model's own logits, and through the pipeline with the judge metrics."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_preference.py


@pytest.mark.slow
def test_preference_model_through_the_pipeline(local_ray, tiny_classifier, rewardbench_file, tmp_path):
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [{"name": "pm", "kind": "preference", "path": tiny_classifier, "max_length": 512,
                    "max_text_tokens": 160, "batch_tokens": 4096}],
    })
    assert run_sweep(spec).ok
    rows = pq.read_table(tmp_path / "out" / "results" / "pm").to_pylist()
    assert len(rows) == 23 and all(r["order"] is not None and r["permutation"] == 0 for r in rows)
    assert all((r["verdict"] == r["order"][0]) == (r["score"] > 0.5) for r in rows if r["verdict"] is not None)
    assert all(r["score"] == 0.5 and r["parsed"] is False for r in rows if r["verdict"] is None)
    (entry,) = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    want = {}
    for r in rows:
        # chosen is candidate 0; an exact tie (e.g. code pairs identical in their first 160 tokens) is unparsed: 0.5
        want.setdefault(r["subset"], []).append(0.5 if r["verdict"] is None else float(r["verdict"] == 0))
    assert entry["subsets"] == pytest.approx({k: sum(v) / len(v) for k, v in want.items()})
    ties = sum(r["verdict"] is None for r in rows)
    assert entry["judge"]["parse_failure_rate"] == pytest.approx(ties / len(rows))
