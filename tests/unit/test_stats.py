"""Statistics (rmorch.orchestrator.report.stats) against brute force and hand-computed references: the bootstrap distribution
against exact enumeration of every resample, the credit fast path against re-scoring tables, paired p-values against
enumeration, Holm's adjustment, Pearson/Spearman with Fisher intervals, and the length-bias split."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pytest

from rmorch.core.schema import items_table, results_table
from rmorch.orchestrator.report import stats as st
from rmorch.suites.rewardbench import RewardBench
from rmorch.suites.userfile import FileSuite


def pair_items(n: int, subset: str = "all", suite: str = "mine", start: int = 0) -> list[dict]:
    return [{"suite": suite, "subset": subset, "item_id": str(start + i), "prompt": [{"role": "user", "content": "q"}],
             "candidates": ["good" * (1 + i % 3), "bad"], "correct": [0]} for i in range(n)]


def scores_for(items: pa.Table, wins: list[bool], model: str = "m") -> pa.Table:
    rows = []
    for it, win in zip(items.select(["suite", "subset", "item_id"]).to_pylist(), wins):
        for k, s in enumerate((1.0, 0.0) if win else (0.0, 1.0)):
            rows.append({**it, "unit_key": "u", "model": model, "candidate": k, "score": s, "settings_hash": "h"})
    return results_table(rows)


def file_suite() -> FileSuite:
    suite = FileSuite()
    suite.name = "mine"
    return suite


def test_bootstrap_matches_exact_enumeration_of_resamples() -> None:
    """n = 5 items: all 5^5 resamples are equally likely; their mean accuracies are the exact bootstrap law."""
    wins = [True, True, False, True, False]
    items = items_table(pair_items(5))
    suite = file_suite()
    observed = suite.score(items, scores_for(items, wins))
    draws = st.draw_resamples(items, suite, st.BootstrapConfig(resamples=40_000, seed=3))
    dist = st.bootstrap_scores(suite, items, scores_for(items, wins), observed, draws)
    exact = np.array([np.mean([wins[i] for i in idx]) for idx in itertools.product(range(5), repeat=5)])
    for v in (0.2, 0.4, 0.6, 0.8):
        assert np.mean(dist.score <= v + 1e-9) == pytest.approx(np.mean(exact <= v + 1e-9), abs=0.01)
    assert dist.score.mean() == pytest.approx(0.6, abs=0.01)


def test_fast_path_equals_rescoring_tables_on_the_same_draws(rewardbench_file) -> None:
    """RewardBench's credits + combine_subsets give exactly the numbers its score() gives on resampled tables."""
    suite = RewardBench()
    items = suite.sample(suite.load(str(rewardbench_file.parent)), 8, seed=0)
    rng = np.random.default_rng(0)
    rows = []
    for it in items.select(["suite", "subset", "item_id"]).to_pylist():
        for k in range(2):
            rows.append({**it, "unit_key": "u", "model": "m", "candidate": k,
                         "score": float(rng.integers(0, 3)), "settings_hash": "h"})  # ties included
    results = results_table(rows)
    observed = suite.score(items, results)
    draws = st.draw_resamples(items, suite, st.BootstrapConfig(resamples=50, seed=1))
    assert st._fast_path_ok(suite, observed, draws)
    fast = st.bootstrap_scores(suite, items, results, observed, draws)
    exact = st._bootstrap_exact(suite, items, results, draws)
    np.testing.assert_allclose(fast.score, exact.score, atol=1e-12)
    for name in exact.sections:
        np.testing.assert_allclose(fast.sections[name], exact.sections[name], atol=1e-12)
    for name in exact.subsets:
        np.testing.assert_allclose(fast.subsets[name], exact.subsets[name], atol=1e-12)
    ci = st.intervals(fast)
    assert ci["score"][0] <= observed.score <= ci["score"][1]


def test_draws_are_stratified_and_model_independent() -> None:
    items = items_table(pair_items(4, "a") + pair_items(6, "b", start=10))
    suite = file_suite()
    d1 = st.draw_resamples(items, suite, st.BootstrapConfig(resamples=30, seed=5))
    d2 = st.draw_resamples(items, suite, st.BootstrapConfig(resamples=30, seed=5))
    assert d1.counts() == {"a": 4, "b": 6}
    for b in range(30):
        rows = [r for r, _ in d1.rows(b)]
        assert sum(1 for r in rows if r < 4) == 4 and len(rows) == 10  # each subset keeps its size
        assert rows == [r for r, _ in d2.rows(b)]


def test_paired_p_value_matches_enumeration() -> None:
    """Two models on 6 items; the exact bootstrap law of the accuracy difference by enumerating 6^6 resamples."""
    a = [True, True, True, False, True, True]
    b = [True, False, False, False, True, False]
    items = items_table(pair_items(6))
    suite = file_suite()
    draws = st.draw_resamples(items, suite, st.BootstrapConfig(resamples=40_000, seed=11))
    ra, rb = scores_for(items, a), scores_for(items, b)
    da = st.bootstrap_scores(suite, items, ra, suite.score(items, ra), draws)
    db = st.bootstrap_scores(suite, items, rb, suite.score(items, rb), draws)
    ci, p = st.paired_test(da.score, db.score, observed_diff=0.5)
    d = np.array([a[i] - b[i] for i in range(6)], dtype=float)
    exact = np.array([d[list(idx)].mean() for idx in itertools.product(range(6), repeat=6)])
    p_exact = min(1.0, 2 * min(np.mean(exact <= 0), np.mean(exact >= 0)))
    assert p == pytest.approx(p_exact, abs=0.01)
    assert ci[0] <= 0.5 <= ci[1]


def test_holm_adjustment_by_hand() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = st.holm([0.2, math.nan])
    assert out[0] == pytest.approx(0.2) and math.isnan(out[1])


def test_correlation_by_hand() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    y = [2.0, 1.0, 4.0, 3.0, 7.0, 5.0, 6.0, 9.0, 10.0, 8.0]
    c = st.correlation(x, y)
    assert c["pearson"]["r"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    # Spearman = Pearson of ranks; no ties, so 1 - 6 sum d^2 / (n (n^2 - 1)); d = -1,1,-1,1,-2,1,1,-1,-1,2: 16
    assert c["spearman"]["r"] == pytest.approx(1 - 6 * 16 / 990)
    r, n = c["pearson"]["r"], 10
    z, se = math.atanh(r), 1 / math.sqrt(n - 3)
    assert c["pearson"]["ci"] == pytest.approx([math.tanh(z - 1.959964 * se), math.tanh(z + 1.959964 * se)], abs=1e-5)
    assert list(st.ranks([3, 1, 3, 2])) == [3.5, 1.0, 3.5, 2.0]
    small = st.correlation([1, 2, 3], [1, 3, 2])
    assert small["pearson"]["ci"] is None and small["pearson"]["r"] == pytest.approx(0.5)


def test_length_bias_split() -> None:
    rows = [
        {"suite": "s", "subset": "x", "item_id": "1", "prompt": [], "candidates": ["long answer", "short"],
         "correct": [0]},
        {"suite": "s", "subset": "x", "item_id": "2", "prompt": [], "candidates": ["a", "longer"], "correct": [0]},
        {"suite": "s", "subset": "x", "item_id": "3", "prompt": [], "candidates": ["tiny", "the long one"],
         "correct": [1]},
        {"suite": "s", "subset": "x", "item_id": "4", "prompt": [], "candidates": ["same", "size"], "correct": [0]},
    ]
    items = items_table(rows)
    length_scores = []
    for r in rows:
        for k, c in enumerate(r["candidates"]):
            length_scores.append({"unit_key": "u", "model": "length", "suite": "s", "subset": "x",
                                  "item_id": r["item_id"], "candidate": k, "score": float(len(c)),
                                  "settings_hash": "h"})
    lb = st.length_bias(items, results_table(length_scores))
    # the length baseline is right exactly when the correct one is longer (items 1 and 3), wrong otherwise (2)
    assert lb == {"longer_correct": 1.0, "shorter_correct": 0.0, "n_longer": 2, "n_shorter": 1}
