"""M-RewardBench: loader (per-language files, one file, hub-layout folders), the per-language RewardBench v1 metric
checked by hand, and the length baseline through the whole pipeline, checked by an independent computation written
here from ../shared/notes/scoring.md without rmorch code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rmorch.suites.mrewardbench  # noqa: F401  (registers the suite)
from rmorch.orchestrator.spec.parse import spec_from_dict
from tests.unit.test_mrewardbench import FIXTURE, by_length, fixture_rows, independent

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_mrewardbench.py


# ---- the pipeline --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_length_baseline_sweep_matches_independent_computation(local_ray, tmp_path: Path) -> None:
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "shard_size": 16,
        "suites": [{"name": "m-rewardbench", "data": str(FIXTURE)}],
        "models": ["length"],
    })
    result = run_sweep(spec)
    assert result.ok
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    (entry,) = [e for e in board if e["model"] == "length" and e["suite"] == "m-rewardbench"]
    want = independent(fixture_rows(), by_length)
    assert entry["n_items"] == len(fixture_rows()) and entry["n_errors"] == 0 and entry["n_missing"] == 0
    assert entry["score"] == pytest.approx(want["score"], abs=1e-12)
    assert entry["extra"]["languages"] == pytest.approx(want["languages"], abs=1e-12)
    assert entry["extra"]["gap_to_english"] == pytest.approx(want["gap"], abs=1e-12)
