"""Best-of-N selection, in closed form: pure functions over candidate rewards and gold qualities.

A pool item has N candidates, a reward per candidate (the model's score) and a gold quality per candidate
(correctness 0/1 or a real-valued score). "Best-of-k" draws k of the N candidates uniformly without replacement and
keeps the one with the highest reward; ties at the top are broken uniformly at random. Its expected gold quality is
exact, not sampled:

    group the candidates by reward level; for a level G (g candidates) with L candidates strictly below it,
    P(the top of a random k-subset lies in G) = (C(L + g, k) - C(L, k)) / C(N, k),
    and given that, the pick is uniform over G's members in the subset, so its expected gold is mean(gold[G]).

Without ties this is the textbook C(r-1, k-1) / C(N, k) for the candidate of rank r (1 = lowest reward). The oracle
line is the same formula with gold as the reward (the best gold among k); the random line is the mean gold (k = 1).
A NaN reward (errored or unparsed candidate) ranks below every real reward: it is picked only when every candidate
drawn is NaN, and then uniformly, as a coin would. (So with errors present, the curve at k = N can be above a suite's official
number, which counts an item with any error as wrong.)

Pools: items whose `gold` column is set use it; other items of a suite with N > 2 labelled candidates (RewardBench 2,
RewardMATH, RM-Bench) get gold 1 for the `correct` candidates and 0 for the rest. Items of one curve must share N:
`pool_curves` groups by N and reports the most common N.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from rmorch.core.schema import candidate_counts
from rmorch.suites.base import candidate_scores


def expected_best_of_k(rewards: Sequence[float], gold: Sequence[float]) -> np.ndarray:
    """Expected gold of the highest-reward candidate among k drawn without replacement, for k = 1..N."""
    n = len(rewards)
    if n == 0 or len(gold) != n:
        raise ValueError(f"need as many gold values as rewards (got {len(rewards)} and {len(gold)})")
    key = [-math.inf if math.isnan(r) else float(r) for r in rewards]
    levels: dict[float, list[float]] = {}
    for r, g in zip(key, gold):
        levels.setdefault(r, []).append(float(g))
    table = _comb_table(n)  # table[a, k] = C(a, k)
    out = np.zeros(n)
    below = 0
    for r in sorted(levels):
        members = levels[r]
        g = len(members)
        p = (table[below + g, 1:] - table[below, 1:]) / table[n, 1:]
        out += p * (sum(members) / g)
        below += g
    return out


@lru_cache(maxsize=64)
def _comb_table(n: int) -> np.ndarray:
    """C(a, k) for a, k = 0..n as floats (exact up to n = 1,000 or so, far beyond any pool)."""
    t = np.zeros((n + 1, n + 1))
    for a in range(n + 1):
        for k in range(a + 1):
            t[a, k] = math.comb(a, k)
    t.setflags(write=False)
    return t


def oracle_best_of_k(gold: Sequence[float]) -> np.ndarray:
    """Expected best gold among k drawn without replacement, k = 1..N."""
    return expected_best_of_k(gold, gold)


def top_pick_gold(rewards: Sequence[float], gold: Sequence[float]) -> float:
    """Expected gold of the highest-reward candidate among all N (ties share the pick evenly): the k = N point."""
    key = [-math.inf if math.isnan(r) else float(r) for r in rewards]
    top = max(key)
    picked = [float(g) for r, g in zip(key, gold) if r == top]
    return sum(picked) / len(picked)


def item_gold(items: pa.Table) -> list[list[float]]:
    """Gold quality per candidate of every item: the `gold` column where set, else 1 for `correct` candidates."""
    golds = items.column("gold").to_pylist() if "gold" in items.column_names else [None] * items.num_rows
    out = []
    for g, n, correct in zip(golds, candidate_counts(items), items.column("correct").to_pylist()):
        if g is not None:
            out.append([float(x) for x in g])
        else:
            good = set(correct)
            out.append([1.0 if i in good else 0.0 for i in range(n)])
    return out


def is_pool(items: pa.Table) -> bool:
    """Whether best-of-N curves mean something here: gold given, or more than two candidates with labels."""
    if "gold" in items.column_names and items.column("gold").null_count < items.num_rows:
        return True
    sizes = Counter(candidate_counts(items))
    return bool(sizes) and sizes.most_common(1)[0][0] > 2


@dataclass
class BonCurve:
    """Mean over a pool's items of the best-of-k expectations, k = 1..N."""

    k: list[int]
    expected: list[float]
    oracle: list[float]
    random: float
    n_items: int
    per_item_top: list[float]  # expected gold of each item's top pick (k = N), in pool order (for statistics)
    item_ids: list[str]

    @property
    def gain(self) -> float:
        """Best-of-N gain over picking at random: expected gold at k = N minus the mean gold."""
        return self.expected[-1] - self.random


def pool_curve(items: pa.Table, results: pa.Table) -> BonCurve | None:
    """The best-of-k curve of one model's pointwise scores over a pool (the items with the most common N).
    None when the model gave no pointwise scores for these items (a pairwise judge)."""
    if "candidate" not in results.column_names or results.column("candidate").null_count == results.num_rows:
        return None
    scores, _ = candidate_scores(items, results)
    golds = item_gold(items)
    n = Counter(len(g) for g in golds).most_common(1)[0][0]
    keep = [i for i, g in enumerate(golds) if len(g) == n]
    ids = items.column("item_id").to_pylist()
    exp = np.zeros(n)
    orc = np.zeros(n)
    tops = []
    for i in keep:
        e = expected_best_of_k(scores[i], golds[i])
        exp += e
        orc += oracle_best_of_k(golds[i])
        tops.append(float(e[-1]))
    m = len(keep)
    return BonCurve(
        k=list(range(1, n + 1)),
        expected=[float(x) for x in exp / m],
        oracle=[float(x) for x in orc / m],
        random=float(orc[0] / m),
        n_items=m,
        per_item_top=tops,
        item_ids=[ids[i] for i in keep],
    )
