"""Statistics beside every leaderboard number: pure functions over item tables, result tables and numbers.

Bootstrap (`bootstrap_scores`). Items are resampled with replacement within each subset (a stratified bootstrap: a
leaderboard's subsets are fixed parts of its design, so each keeps its size), in units of the suite's sample groups
(RewardBench 2 Ties: a prompt's ref and tied items move together). The draws depend only on the seed, the suite and
the subset, never on the model, so every model of a suite sees the same resamples: paired comparisons come from the
same draws. Each resample is scored by the suite's own official metric, so the intervals are those of the official
number, sections and subsets included. Two ways, same draws, same numbers:
  - fast: a suite whose score is a function of its subsets' mean item credits (it returns `item_credits` in its
    SuiteScore and implements `combine_subsets`) is resampled as arrays of credits;
  - exact fallback: any other suite's `score` is called on each resampled item table, the repeated items renamed by
    `Suite.resampled_id` so they stay distinct.
Intervals are percentile intervals at `level`.

Paired comparisons (`paired_test`): for two models on the same items, the bootstrap distribution of the difference of
their official scores over the shared draws; two-sided p = min(1, 2 min(P*(d <= 0), P*(d >= 0))) with the usual +1
correction, so p >= 2 / (B + 1). Multiple comparisons: Holm-Bonferroni over all pairs of models within a suite
(`holm`), which controls the family-wise error rate at 0.05 without assuming independence.

Correlation across models (`correlation`): Pearson and Spearman r with 95 % intervals from Fisher's z transform
(standard error 1 / sqrt(n - 3) for Pearson, sqrt(1.06 / (n - 3)) for Spearman, Fieller et al. 1957); fewer than four
models give r without an interval.

Length bias (`length_bias`): on two-candidate items with one correct response, the official credit split by whether
the correct response is the longer one (characters); equal lengths are left out.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rmorch.orchestrator.spec.sweep_spec import DEFAULT_RESAMPLES

DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class BootstrapConfig:
    resamples: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {"resamples": self.resamples, "seed": self.seed, "level": self.level,
                "unit": "items resampled within each subset (sample groups kept together), official metric"}


CHUNK_PICKS = 1 << 22  # index draws generated at a time (32 MiB): memory stays bounded for any suite size


@dataclass
class Draws:
    """The resamples of one suite's items: per subset, its groups (row indices) and, drawn on demand, a
    (B, n_groups) matrix of picked groups. The matrix is generated in row chunks from a generator seeded per
    (seed, suite, subset), so it is the same however it is chunked and is never held whole for large suites."""

    subsets: list[str]
    groups: dict[str, list[list[int]]]
    seeds: dict[str, list[int]]
    resamples: int

    def counts(self) -> dict[str, int]:
        """Items per subset (fixed under this stratified resampling)."""
        return {s: sum(len(g) for g in self.groups[s]) for s in self.subsets}

    def pick_chunks(self, subset: str) -> Iterator[np.ndarray]:
        """The subset's (B, n_groups) pick matrix, as consecutive blocks of whole resamples."""
        n = len(self.groups[subset])
        rng = np.random.default_rng(self.seeds[subset])
        step = max(1, CHUNK_PICKS // max(n, 1))
        for start in range(0, self.resamples, step):
            yield rng.integers(0, n, size=(min(step, self.resamples - start), n), dtype=np.int64)

    def all_rows(self) -> Iterator[list[tuple[int, int]]]:
        """Per resample b = 0, 1, ...: (item row, copy number), subset by subset."""
        streams = {s: self._resample_rows(s) for s in self.subsets}
        for _ in range(self.resamples):
            yield [pair for s in self.subsets for pair in next(streams[s])]

    def rows(self, b: int) -> list[tuple[int, int]]:
        """(item row, copy number) of resample b, subset by subset."""
        for i, rows in enumerate(self.all_rows()):
            if i == b:
                return rows
        raise IndexError(b)

    def _resample_rows(self, subset: str) -> Iterator[list[tuple[int, int]]]:
        groups = self.groups[subset]
        for chunk in self.pick_chunks(subset):
            for picks in chunk:
                yield [(row, copy) for copy, g in enumerate(picks) for row in groups[int(g)]]


def draw_resamples(items: pa.Table, suite: Any, config: BootstrapConfig) -> Draws:
    subsets = items.column("subset").to_pylist()
    ids = items.column("item_id").to_pylist()
    groups: dict[str, dict[str, list[int]]] = {}
    for row, (s, iid) in enumerate(zip(subsets, ids)):
        groups.setdefault(s, {}).setdefault(suite.sample_group(iid), []).append(row)
    seeds = {s: [config.seed, zlib.crc32(suite.name.encode()), zlib.crc32(s.encode())] for s in groups}
    return Draws(list(groups), {s: list(g.values()) for s, g in groups.items()}, seeds, config.resamples)


@dataclass
class ScoreDistribution:
    """Bootstrap replicates of one model's official numbers on one suite (NaN where a replicate has no value)."""

    score: np.ndarray
    sections: dict[str, np.ndarray] = field(default_factory=dict)
    subsets: dict[str, np.ndarray] = field(default_factory=dict)


def bootstrap_scores(suite: Any, items: pa.Table, results: pa.Table, observed: Any, draws: Draws) -> ScoreDistribution:
    """Replicates of `suite.score` over `draws`. `observed` is the SuiteScore on all items (for the fast path)."""
    if _fast_path_ok(suite, observed, draws):
        return _bootstrap_credits(suite, items, np.asarray(observed.item_credits, dtype=float), draws)
    return _bootstrap_exact(suite, items, results, draws)


def _fast_path_ok(suite: Any, observed: Any, draws: Draws) -> bool:
    credits = observed.item_credits
    if credits is None or any(len(g) != 1 for gs in draws.groups.values() for g in gs):
        return False
    try:  # the suite's combine must reproduce its own observed numbers, else the exact path is used
        subs = items_subset_means(draws, np.asarray(credits, dtype=float))
        score, sections = suite.combine_subsets(subs, draws.counts())
    except NotImplementedError:
        return False
    return _close(score, observed.score) and all(_close(sections.get(k), v) for k, v in observed.sections.items())


def items_subset_means(draws: Draws, credits: np.ndarray) -> dict[str, float]:
    return {s: float(np.mean([credits[g[0]] for g in draws.groups[s]])) for s in draws.subsets}


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9


def _bootstrap_credits(suite: Any, items: pa.Table, credits: np.ndarray, draws: Draws) -> ScoreDistribution:
    means = {}
    for s in draws.subsets:
        subset_credits = credits[np.array([g[0] for g in draws.groups[s]], dtype=np.int64)]
        means[s] = np.concatenate([subset_credits[chunk].mean(axis=1) for chunk in draws.pick_chunks(s)])
    dist = ScoreDistribution(np.empty(draws.resamples), {}, {s: means[s] for s in draws.subsets})
    counts = draws.counts()
    for b in range(draws.resamples):
        score, sections = suite.combine_subsets({s: float(means[s][b]) for s in draws.subsets}, counts)
        dist.score[b] = score
        for name, v in sections.items():
            dist.sections.setdefault(name, np.full(draws.resamples, np.nan))[b] = v
    return dist


def _bootstrap_exact(suite: Any, items: pa.Table, results: pa.Table, draws: Draws) -> ScoreDistribution:
    ids = items.column("item_id").to_pylist()
    rows_of: dict[str, list[int]] = {}
    for r, iid in enumerate(results.column("item_id").to_pylist()):
        rows_of.setdefault(iid, []).append(r)
    dist = ScoreDistribution(np.empty(draws.resamples))
    for b, picked in enumerate(draws.all_rows()):
        new_ids = [suite.resampled_id(ids[row], copy) for row, copy in picked]
        items_b = items.take([row for row, _ in picked])
        items_b = items_b.set_column(items_b.schema.get_field_index("item_id"), "item_id", pa.array(new_ids))
        res_rows: list[int] = []
        res_ids: list[str] = []
        for (row, _), new_id in zip(picked, new_ids):
            rs = rows_of.get(ids[row], [])
            res_rows.extend(rs)
            res_ids.extend([new_id] * len(rs))
        results_b = results.take(res_rows)
        results_b = results_b.set_column(results_b.schema.get_field_index("item_id"), "item_id",
                                         pa.array(res_ids, pa.string()))
        s = suite.score(items_b, results_b)
        dist.score[b] = s.score
        for target, values in ((dist.sections, s.sections), (dist.subsets, s.subsets)):
            for name, v in values.items():
                target.setdefault(name, np.full(draws.resamples, np.nan))[b] = v
    return dist


def percentile_ci(values: np.ndarray, level: float = DEFAULT_LEVEL) -> list[float] | None:
    """The percentile interval of bootstrap replicates (NaN replicates ignored); None when there are none."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return None
    alpha = (1 - level) / 2
    lo, hi = np.quantile(v, [alpha, 1 - alpha])
    return [float(lo), float(hi)]


def intervals(dist: ScoreDistribution, level: float = DEFAULT_LEVEL) -> dict[str, Any]:
    return {
        "level": level,
        "score": percentile_ci(dist.score, level),
        "sections": {k: percentile_ci(v, level) for k, v in dist.sections.items()},
        "subsets": {k: percentile_ci(v, level) for k, v in dist.subsets.items()},
    }


# ---- paired comparisons ------------------------------------------------------------------------------------


@dataclass
class PairedResult:
    suite: str
    model_a: str
    model_b: str
    diff: float  # observed score(a) - score(b)
    ci: list[float] | None
    p: float
    p_adjusted: float = math.nan
    significant: bool = False


def paired_test(a: np.ndarray, b: np.ndarray, observed_diff: float, level: float = DEFAULT_LEVEL) -> tuple[
        list[float] | None, float]:
    """Percentile interval of the replicate differences a - b and the two-sided bootstrap p-value of 'no
    difference' (+1-corrected: never below 2 / (B + 1))."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0 or math.isnan(observed_diff):
        return None, math.nan
    n = d.size
    p_le = (np.count_nonzero(d <= 0) + 1) / (n + 1)
    p_ge = (np.count_nonzero(d >= 0) + 1) / (n + 1)
    return percentile_ci(d, level), float(min(1.0, 2 * min(p_le, p_ge)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN and is not counted in the family)."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


# ---- correlation across models -----------------------------------------------------------------------------


def _fisher_ci(r: float, n: int, se: float, level: float) -> list[float] | None:
    if n < 4 or math.isnan(r):
        return None
    z = math.atanh(max(-0.999999, min(0.999999, r)))
    q = _normal_quantile(1 - (1 - level) / 2)
    return [math.tanh(z - q * se), math.tanh(z + q * se)]


def _normal_quantile(p: float) -> float:
    """Inverse standard normal CDF by bisection on erf (accurate to ~1e-12; no scipy needed)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.size < 2 or np.std(xa) == 0 or np.std(ya) == 0:
        return math.nan
    return float(np.corrcoef(xa, ya)[0, 1])


def ranks(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    r = np.empty(a.size)
    i = 0
    while i < a.size:
        j = i
        while j + 1 < a.size and a[order[j + 1]] == a[order[i]]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def correlation(x: Sequence[float], y: Sequence[float], level: float = DEFAULT_LEVEL) -> dict[str, Any]:
    n = len(x)
    r_p = pearson(x, y)
    r_s = pearson(ranks(x), ranks(y)) if n >= 2 else math.nan
    se_p = 1 / math.sqrt(n - 3) if n > 3 else math.nan
    se_s = math.sqrt(1.06 / (n - 3)) if n > 3 else math.nan
    return {
        "n": n,
        "pearson": {"r": _none_if_nan(r_p), "ci": _fisher_ci(r_p, n, se_p, level)},
        "spearman": {"r": _none_if_nan(r_s), "ci": _fisher_ci(r_s, n, se_s, level)},
    }


def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else v


# ---- length bias -------------------------------------------------------------------------------------------


def length_bias(items: pa.Table, results: pa.Table) -> dict[str, Any] | None:
    """Official pairwise credit split by whether the correct response is the longer one; None when the suite has
    no two-candidate items with a single correct response."""
    from rmorch.suites.judging import official_credits, pairwise_rating_credit

    pairs = _pair_lengths(items)  # characters, from Arrow: the texts never become Python strings
    single = _single_correct(items)
    longer: list[float] = []
    shorter: list[float] = []
    for k in (0, 1):  # items whose correct response is shown first, then second
        keep = np.flatnonzero((pairs[:, 0] >= 0) & (single == k))
        for start in range(0, len(keep), LENGTH_BIAS_CHUNK):  # a chunk of items at a time: memory stays bounded
            rows = keep[start:start + LENGTH_BIAS_CHUNK]
            sub = items.take(pa.array(rows))
            res = results.filter(pc.is_in(results.column("item_id"),
                                          value_set=sub.column("item_id").combine_chunks()))
            credits, _ = official_credits(sub, res, pointwise=lambda s, k=k: _pair_credit(s, k),
                                          ratings=pairwise_rating_credit)
            for credit, good, other in zip(credits, pairs[rows, k].tolist(), pairs[rows, 1 - k].tolist()):
                if good > other:
                    longer.append(credit)
                elif good < other:
                    shorter.append(credit)
    if not longer and not shorter:
        return None
    return {
        "longer_correct": float(np.mean(longer)) if longer else None,
        "shorter_correct": float(np.mean(shorter)) if shorter else None,
        "n_longer": len(longer),
        "n_shorter": len(shorter),
    }


LENGTH_BIAS_CHUNK = 100_000  # items credited at a time by length_bias (per-item credits: chunking changes nothing)


def _pair_lengths(items: pa.Table) -> np.ndarray:
    """(n, 2) characters of the two candidates of each two-candidate item; -1 for items with another count."""
    if "candidate_chars" in items.column_names:
        chars = items.column("candidate_chars").combine_chunks()
    else:
        cands = items.column("candidates").combine_chunks()
        offsets = pc.subtract(cands.offsets, cands.offsets[0])
        chars = pa.ListArray.from_arrays(offsets, pc.utf8_length(cands.flatten()))
    return _first_two(chars)


def _single_correct(items: pa.Table) -> np.ndarray:
    """Per item, the index of its one correct candidate; -1 for items with no or several correct ones."""
    correct = _first_two(items.column("correct").combine_chunks(), exactly=1)
    return correct[:, 0]


def _first_two(lists: pa.ListArray, exactly: int = 2) -> np.ndarray:
    """(n, 2) first two values of each list that has `exactly` values (the rest -1), as int64."""
    offsets = lists.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    values = pc.fill_null(lists.flatten(), -1).to_numpy(zero_copy_only=False).astype(np.int64)
    sizes = np.diff(offsets)
    out = np.full((len(lists), 2), -1, dtype=np.int64)
    ok = np.flatnonzero(sizes == exactly)
    for j in range(exactly):
        out[ok, j] = values[offsets[:-1][ok] + j]
    return out


def _pair_credit(scores: list[float], correct: int) -> float:
    """Strictly higher correct score: 1; tie, lower or a missing score: 0 (RewardBench's rule)."""
    return 1.0 if scores[correct] > scores[1 - correct] else 0.0
