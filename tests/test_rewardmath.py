"""RewardMATH: loader (real local files, hub path, bad rows), the official strict-top accuracy against the
reference values from the published per-solution scores, hand-computed cases, and one sweep with `length`."""

from __future__ import annotations

import json

import pytest

import rmorch.suites.rewardmath  # noqa: F401  (registers the suite)
from tests.unit import test_rewardmath as fast
from tests.unit.test_rewardmath import _direct_rows

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_rewardmath.py
rm_dir = fast.rm_dir  # a fixture shared with the fast tier


# ---- through the real pipeline -----------------------------------------------------------------------------


@pytest.mark.slow
def test_length_baseline_through_the_pipeline(local_ray, rm_dir, tmp_path) -> None:
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardmath", "data": str(rm_dir)}],
        "models": ["length"],
    })
    result = run_sweep(spec)
    assert result.ok
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    length = next(e for e in board if e["model"] == "length" and e["suite"] == "rewardmath")

    # Independent: per problem, the chosen solution's length ("\n"-joined steps) strictly above all rejected ones.
    by_problem: dict[int, dict[str, list[int]]] = {}
    for r in _direct_rows(rm_dir):
        by_problem.setdefault(r["problem_id"], {"chosen": [], "rejected": []})[r["solution_type"]].append(
            len("\n".join(r["eval_solution"])))
    hits = [int(all(g["chosen"][0] > x for x in g["rejected"])) for g in by_problem.values()]
    assert length["n_items"] == len(hits) == 2 and length["n_errors"] == 0
    assert length["score"] == pytest.approx(sum(hits) / len(hits), abs=1e-12)
