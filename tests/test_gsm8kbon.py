"""gsm8k-bon: the loader on the real GSM8K model solutions (per-key accuracies and oracle against the data README),
the GSM8K verifier against the stored labels, items with no correct candidate through sampling, the plan and
judge orders, the official best-of-N pick by hand (ties, errors, judge verdicts and ratings), and bad input."""

from __future__ import annotations

import json

import pytest

from tests.unit import test_gsm8kbon as fast
from tests.unit.test_gsm8kbon import KEYS

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_gsm8kbon.py
gsm8k_dir = fast.gsm8k_dir  # a fixture shared with the fast tier
raw_rows = fast.raw_rows  # a fixture shared with the fast tier


# ---- through the real pipeline -----------------------------------------------------------------------------


@pytest.mark.slow
def test_length_baseline_through_the_pipeline(local_ray, gsm8k_dir, raw_rows, tmp_path) -> None:
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep
    from rmorch.suites.bestofn import top_pick_gold

    spec = spec_from_dict({"out": str(tmp_path / "out"), "suites": [{"name": "gsm8k-bon", "data": str(gsm8k_dir)}],
                           "models": ["length"]})
    assert run_sweep(spec).ok
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    entry = next(e for e in board if e["model"] == "length" and e["suite"] == "gsm8k-bon")

    # Independent: per problem, the gold of the longest solution (ties share), from the raw file.
    picks = [top_pick_gold([len(r[k]["solution"]) for k in KEYS], [float(r[k]["is_correct"]) for k in KEYS])
             for r in raw_rows]
    print(f"length on the GSM8K model solutions: {entry['score']:.4f}, extra {entry['extra']}")
    assert entry["n_items"] == 1319 and entry["n_errors"] == 0 and entry["n_missing"] == 0
    assert entry["score"] == pytest.approx(sum(picks) / len(picks), abs=1e-12)
    assert entry["extra"]["oracle"] == pytest.approx(887 / 1319)
    assert entry["extra"]["n_candidates"] == 4
