"""Best-of-N in closed form (rmorch.suites.bestofn) against brute-force enumeration of every k-subset, hand-computed cases,
and the `length` baseline's gsm8k-bon curve from a real sweep against a computation straight from the data file."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from rmorch.suites.bestofn import expected_best_of_k, oracle_best_of_k, top_pick_gold


def brute_force(rewards: list[float], gold: list[float]) -> list[float]:
    """Average over every k-subset of the gold of its top-reward member (ties: the mean gold of the tied top)."""
    n = len(rewards)
    key = [-math.inf if math.isnan(r) else r for r in rewards]
    out = []
    for k in range(1, n + 1):
        total, count = 0.0, 0
        for sub in itertools.combinations(range(n), k):
            top = max(key[i] for i in sub)
            tied = [i for i in sub if key[i] == top]
            total += sum(gold[i] for i in tied) / len(tied)
            count += 1
        out.append(total / count)
    return out


def test_hand_computed_cases() -> None:
    # rewards 3, 1, 2; only the lowest-reward candidate is correct: k=1 -> 1/3, then the pick is never it.
    assert list(expected_best_of_k([3, 1, 2], [0, 1, 0])) == pytest.approx([1 / 3, 0, 0])
    # all rewards tied: every k picks uniformly, so the mean gold
    assert list(expected_best_of_k([5, 5, 5, 5], [1, 0, 0, 1])) == pytest.approx([0.5] * 4)
    # oracle on 0/1 gold: 1 - C(#wrong, k) / C(N, k); N=4 with one correct: 1/4, 1/2, 3/4, 1
    assert list(oracle_best_of_k([0, 1, 0, 0])) == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # an errored candidate (NaN) never beats a real score
    assert top_pick_gold([math.nan, 0.1], [1, 0]) == 0.0
    assert top_pick_gold([math.nan, math.nan], [1, 0]) == 0.5


def test_closed_form_equals_brute_force_with_ties_and_nans() -> None:
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 7)
        rewards = [rng.choice([0.0, 1.0, 2.0, 2.5, math.nan]) for _ in range(n)]
        gold = [rng.choice([0.0, 1.0, rng.random()]) for _ in range(n)]
        assert list(expected_best_of_k(rewards, gold)) == pytest.approx(brute_force(rewards, gold), abs=1e-12)
        assert top_pick_gold(rewards, gold) == pytest.approx(brute_force(rewards, gold)[-1], abs=1e-12)


def test_length_curve_on_gsm8k_bon_matches_independent_computation(tmp_path, shared_data, local_ray) -> None:
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    data = shared_data / "gsm8k"
    spec = spec_from_dict({"out": str(tmp_path / "out"), "seed": 0, "resamples": 200,
                           "suites": [{"name": "gsm8k-bon", "data": str(data)}],
                           "models": ["length", "random"]})
    run_sweep(spec)
    bon = json.loads((tmp_path / "out" / "bon.json").read_text())
    curve = next(c for c in bon if c["model"] == "length" and c["suite"] == "gsm8k-bon")

    # Independent: straight from the file, the four solutions in key order, score = characters, every k-subset.
    keys = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
    rows = [json.loads(line) for line in (data / "example_model_solutions.jsonl").read_text().splitlines()]
    sums = [0.0] * 4
    oracle = [0.0] * 4
    for r in rows:
        lengths = [float(len(r[k]["solution"])) for k in keys]
        gold = [1.0 if r[k]["is_correct"] else 0.0 for k in keys]
        for i, v in enumerate(brute_force(lengths, gold)):
            sums[i] += v
        for i, v in enumerate(brute_force(gold, gold)):
            oracle[i] += v
    assert curve["k"] == [1, 2, 3, 4]
    assert curve["n_items"] == len(rows) == 1319
    assert curve["expected"] == pytest.approx([s / len(rows) for s in sums], abs=1e-12)
    assert curve["oracle"] == pytest.approx([s / len(rows) for s in oracle], abs=1e-12)
    assert curve["random"] == pytest.approx(sums[0] / len(rows), abs=1e-12)
    assert curve["oracle"][-1] == pytest.approx(0.672, abs=0.001)  # the data README: any of four correct, 67.2 %
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    length = next(e for e in board if e["model"] == "length")
    assert length["score"] == pytest.approx(curve["expected"][-1], abs=1e-12)  # the official number is k = N
    assert (tmp_path / "out" / "plots" / "bon-gsm8k-bon.png").stat().st_size > 10_000
