"""RAG-RewardBench (rmorch.suites.ragrewardbench): loader on hub-schema fixtures, the official metric against hand-computed
cases, and the `length` baseline through the real pipeline checked against an independent computation."""

from __future__ import annotations

import json
import math

import pytest

import rmorch.suites.ragrewardbench  # noqa: F401  (registers the suite)
from tests.unit.test_ragrewardbench import DATA, _rows

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_ragrewardbench.py


@pytest.mark.slow
def test_length_baseline_through_the_pipeline(local_ray, tmp_path):
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({"out": str(tmp_path / "out"), "shard_size": 4,
                           "suites": [{"name": "rag-rewardbench", "data": str(DATA)}], "models": ["length"]})
    result = run_sweep(spec)
    assert result.ok
    (board,) = json.loads((tmp_path / "out" / "leaderboard.json").read_text())

    # Independent computation from the raw files: strict length(chosen) > length(reject), item-weighted.
    hits: dict[str, list[int]] = {}
    for scen, row in _rows():
        hits.setdefault(scen, []).append(int(len(row["chosen"]) > len(row["reject"])))
    every = [h for v in hits.values() for h in v]
    helpful = hits["helpful"] + hits["reason"] + hits["citation"]
    harmless = hits["harmless"] + hits["abstain"] + hits["conflict"]
    assert board["n_items"] == 13 and board["n_errors"] == 0
    assert board["subsets"] == pytest.approx({s: sum(v) / len(v) for s, v in hits.items()}, abs=1e-12)
    assert board["sections"] == pytest.approx({"Helpful": sum(helpful) / len(helpful),
                                               "Harmless": sum(harmless) / len(harmless)}, abs=1e-12)
    assert board["score"] == pytest.approx(sum(every) / len(every), abs=1e-12)
    assert not math.isclose(board["score"], sum(sum(v) / len(v) for v in hits.values()) / 6)  # weighting matters
