"""Generative judges (LLM-as-a-judge): the official per-item credit of their verdicts and ratings, and the judge
metrics reported beside the official number. Pure functions over the item and result tables (rmorch.core.schema).

A judge writes two kinds of result rows:
- comparisons (`candidate` null): one per presented order of an item; `permutation` 0 is the item's seeded base
  order, the only one the official number uses; `verdict` is the index of the chosen candidate (null if unparsed);
- ratings (`candidate` set, `parsed` not null): one per candidate, `score` = the rating (null if unparsed).
Rows with `error` set failed outright (no verdict, no rating, `parsed` null).

Official credit of one item (../shared/notes/scoring.md, "Generative judges"), in this order of precedence:
- the item has comparison rows: the base-order verdict; correct 1, parsed but wrong 0, unparsed 1/len(order)
  (0.5 pairwise, 0.25 four-way); an error or a missing base-order row is wrong (0);
- the item has rating rows: `rating_credit` (RewardBench 2: invalid ratings excluded from the max; 1/|argmax| if
  the chosen is in it; all invalid 1/n) or `pairwise_rating_credit` (RewardBench v1: a tie or any invalid rating
  0.5); an error or a missing rating is wrong (0);
- otherwise (reward models, baselines): the suite's own pointwise rule, unchanged.
Suites get all three from `official_credits`; for scores fed to other formulas (the Ties subset), `rating_scores`
gives the ratings with unparsed ones as -1 (official) and errors as NaN.

Judges with probability verdicts (`probs` on their comparison rows) are also measured for calibration
(`judge_calibration`, in `judge_metrics` as `calibration`): Brier score, ECE, reliability bins, fragile verdicts.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rmorch.core.schema import candidate_counts
from rmorch.suites.base import candidate_scores

INVALID_RATING = -1.0  # what the official scripts record for a rating they could not parse


@dataclass(frozen=True)
class Comparison:
    """One comparison row of an item."""

    permutation: int
    order: tuple[int, ...] | None
    verdict: int | None
    parsed: bool | None
    error: str | None
    probs: tuple[float, ...] | None = None  # probability verdicts: per candidate (indexed like candidates)

    @property
    def ok(self) -> bool:
        """A parsed verdict from a request that did not fail."""
        return self.error is None and bool(self.parsed) and self.verdict is not None


# ---- reading result rows -----------------------------------------------------------------------------------


def is_judge(results: pa.Table) -> bool:
    """Whether the rows come from a generative judge: any comparison row, or any row with `parsed` set."""
    return bool(pc.any(pc.is_null(results.column("candidate"))).as_py() or
                pc.any(pc.is_valid(results.column("parsed"))).as_py())


def comparisons(items: pa.Table, results: pa.Table) -> list[dict[int, Comparison]]:
    """Per item (in `items` order), its comparison rows keyed by permutation (a null permutation counts as 0; of
    duplicate rows the first is kept). Items without comparison rows get an empty dict; rows of other items are
    ignored. `probs` is read where the table has the column (tables of older runs or narrower reads may not)."""
    index = {iid: i for i, iid in enumerate(items.column("item_id").to_pylist())}
    out: list[dict[int, Comparison]] = [{} for _ in index]
    rows = results.filter(pc.is_null(results.column("candidate")))
    cols = [rows.column(c).to_pylist() for c in ("item_id", "permutation", "order", "verdict", "parsed", "error")]
    probs = rows.column("probs").to_pylist() if "probs" in rows.column_names else [None] * rows.num_rows
    for iid, perm, order, verdict, parsed, error, pr in zip(*cols, probs):
        i = index.get(iid)
        if i is None:
            continue
        p = 0 if perm is None else int(perm)
        if p not in out[i]:
            out[i][p] = Comparison(p, None if order is None else tuple(order), verdict, parsed, error,
                                   None if pr is None else tuple(pr))
    return out


def rated_items(items: pa.Table, results: pa.Table) -> list[bool]:
    """Per item, whether it has rating rows (pointwise rows with `parsed` set)."""
    rows = results.filter(pc.and_(pc.is_valid(results.column("candidate")), pc.is_valid(results.column("parsed"))))
    rated = set(rows.column("item_id").to_pylist())
    return [iid in rated for iid in items.column("item_id").to_pylist()]


def rating_scores(items: pa.Table, results: pa.Table) -> tuple[list[list[float]], list[bool]]:
    """`candidate_scores` with unparsed ratings as -1 (the official invalid rating) and errors and missing rows as
    NaN; for reward models (no `parsed`) exactly `candidate_scores`. The bool per item: any error or missing."""
    return candidate_scores(items, results, unparsed=INVALID_RATING)


# ---- per-item credit ---------------------------------------------------------------------------------------


def comparison_credit(c: Comparison | None, correct: Sequence[int], n_candidates: int) -> float:
    """Official credit of one verdict: 1 if it names a correct candidate, 0 if parsed but wrong, 1/len(order) if
    unparsed (chance: 0.5 pairwise, 0.25 four-way); 0 for an error row or no row."""
    if c is None or c.error is not None:
        return 0.0
    if c.ok:
        return 1.0 if c.verdict in correct else 0.0
    return 1.0 / (len(c.order) if c.order else n_candidates)


def rating_credit(ratings: Sequence[float], correct_index: int = 0) -> float:
    """Official best-of-n credit from ratings: invalid ratings (-1) are excluded from the maximum; 1/|argmax| if
    the correct candidate is among the top-rated, else 0; all invalid: 1/n (0.25 with four). A NaN (an error or a
    missing rating) makes the item wrong (0)."""
    if any(math.isnan(r) for r in ratings):
        return 0.0
    valid = [k for k, r in enumerate(ratings) if r != INVALID_RATING]
    if not valid:
        return 1.0 / len(ratings)
    top = max(ratings[k] for k in valid)
    winners = [k for k in valid if ratings[k] == top]
    return 1.0 / len(winners) if correct_index in winners else 0.0


def pairwise_rating_credit(ratings: Sequence[float], correct_index: int = 0) -> float:
    """RewardBench v1's rule for two ratings (allenai/reward-bench rewardbench/generative.py run_judge_ratings):
    1 if both are valid and the correct one is rated strictly higher, 0 if strictly lower, 0.5 for a tie or any
    invalid rating; a NaN (an error or a missing rating) makes the item wrong (0)."""
    if len(ratings) != 2:
        raise ValueError(f"pairwise ratings need 2 candidates, got {len(ratings)}")
    if any(math.isnan(r) for r in ratings):
        return 0.0
    mine, other = ratings[correct_index], ratings[1 - correct_index]
    if INVALID_RATING in (mine, other) or mine == other:
        return 0.5
    return 1.0 if mine > other else 0.0


def official_credits(
    items: pa.Table,
    results: pa.Table,
    pointwise: Callable[[list[float]], float],
    ratings: Callable[[Sequence[float], int], float] = rating_credit,
) -> tuple[list[float], list[bool]]:
    """Per item (in `items` order): the official credit, and whether the item counts as errored or missing.

    Items with comparison rows are credited from the base order (permutation 0) by `comparison_credit`, items with
    rating rows by `ratings` (given the ratings, unparsed ones -1, and the index of the correct candidate), all
    others by `pointwise` (the suite's rule for reward-model scores, NaN for errors and missing rows)."""
    comps = comparisons(items, results)
    rated = rated_items(items, results)
    scores, bad = rating_scores(items, results)
    correct = items.column("correct").to_pylist()
    credits: list[float] = []
    flags: list[bool] = []
    for i, row in enumerate(scores):
        if comps[i]:
            base = comps[i].get(0)
            credits.append(comparison_credit(base, correct[i], len(row)))
            flags.append(base is None or base.error is not None)
        elif rated[i]:
            credits.append(ratings(row, correct[i][0]) if correct[i] else 0.0)  # no correct candidate: none to find
            flags.append(bad[i])
        else:
            credits.append(pointwise(row))
            flags.append(bad[i])
    return credits, flags


# ---- judge metrics beside the official number --------------------------------------------------------------


def judge_metrics(items: pa.Table, results: pa.Table, official: float | None = None) -> dict[str, Any] | None:
    """What the official number hides about a judge; None for results that are not a judge's (`is_judge`).

    official               the suite's official score (as given)
    both_orders_accuracy   share of items with comparisons judged correct in every presented order present
                           (unparsed or error = not correct)
    position_consistency   share of items with >= 2 presented orders whose verdicts all name the same candidate
                           (any unparsed or error = inconsistent)
    first_position_rate    among parsed comparisons, share won by the candidate shown first (~0.5 for an unbiased
                           pairwise judge, 0.25 four-way)
    position_win_rates     the same for every shown position (A, B, ...); sums to 1
    parse_failure_rate     unparsed / rows that reached the parser (comparisons and ratings; errors excluded)
    verdicts_read, verdict_rows   parsed rows, and rows that reached the parser
    verdict_mode           "logprobs" (probability verdicts: rows with `probs`) or "text" (parsed replies)
    error_rate             error rows / all judge rows
    n_comparisons, n_ratings   rows of each kind (incl. errors); n_orders: most presented orders of one item
    n_compared_items, n_multi_order_items   the denominators of both_orders_accuracy and position_consistency
    calibration            probability verdicts only (`judge_calibration`; the key is absent for judges whose
                           comparison rows have no `probs`)
    Rates without a denominator are NaN (null in JSON).
    """
    if not is_judge(results):
        return None
    item_ids = pa.array(items.column("item_id").to_pylist(), pa.string())
    mine = results.filter(pc.is_in(results.column("item_id"), value_set=item_ids))
    correct = items.column("correct").to_pylist()
    comps = comparisons(items, mine)
    compared = [(by_perm, set(correct[i])) for i, by_perm in enumerate(comps) if by_perm]
    both = [all(c.ok and c.verdict in good for c in by_perm.values()) for by_perm, good in compared]
    multi = [by_perm for by_perm, _ in compared if len(by_perm) >= 2]
    consistent = [all(c.ok for c in m.values()) and len({c.verdict for c in m.values()}) == 1 for m in multi]

    rows = mine.filter(pc.is_null(mine.column("candidate")))
    width = max((len(o) for o in rows.column("order").to_pylist() if o), default=0)
    wins = [0] * width
    cols = (rows.column(c).to_pylist() for c in ("order", "verdict", "parsed", "error"))
    for order, verdict, ok, error in zip(*cols):
        if error is None and ok and verdict is not None and order and verdict in order:
            wins[order.index(verdict)] += 1
    n_won = sum(wins)
    win_rates = [w / n_won if n_won else math.nan for w in wins]

    parsed = [p for p in mine.column("parsed").to_pylist() if p is not None]
    n_errors = mine.num_rows - mine.column("error").null_count
    with_probs = "probs" in mine.column_names and mine.column("probs").null_count < mine.num_rows

    out: dict[str, Any] = {
        "official": official,
        "both_orders_accuracy": _mean(both),
        "position_consistency": _mean(consistent),
        "first_position_rate": win_rates[0] if win_rates else math.nan,
        "position_win_rates": win_rates,
        "parse_failure_rate": parsed.count(False) / len(parsed) if parsed else math.nan,
        "verdicts_read": parsed.count(True),
        "verdict_rows": len(parsed),
        "verdict_mode": "logprobs" if with_probs else "text",
        "error_rate": n_errors / mine.num_rows if mine.num_rows else math.nan,
        "n_comparisons": rows.num_rows,
        "n_orders": max((len(by_perm) for by_perm, _ in compared), default=0),
        "n_ratings": mine.num_rows - rows.num_rows,
        "n_compared_items": len(compared),
        "n_multi_order_items": len(multi),
    }
    calibration = _calibration(comps, correct, candidate_counts(items))
    if calibration is not None:
        out["calibration"] = calibration
    return out


def _mean(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


# ---- probability verdicts: calibration ---------------------------------------------------------------------
#
# A judge with probability verdicts (`verdict: logprobs`) writes on each comparison row `probs`, its probability of
# choosing each candidate (indexed like the item's candidates, whatever order they were shown in). Per item, the
# order-averaged preference p_item(c) is the mean of probs[c] over the item's comparison rows with probs (error rows
# and rows whose probs are not one finite number per candidate are ignored). Calibration asks whether these
# probabilities mean what they say, in an orientation with balanced labels: the candidate shown first in the item's
# base order (permutation 0; without a permutation-0 row with probs, the lowest permutation that has them), p =
# p_item(that candidate), y = 1 if it is a correct candidate. Rating rows' probs (over ratings 1..10) are not used.

CALIBRATION_BINS = 10  # equal-width bins of the predicted probability on [0, 1] (ECE, reliability diagram)
FRAGILE_MARGIN = 0.1  # a probability verdict whose two largest probabilities differ by less than this is fragile
_TIE = 1e-12  # order-averaged probabilities this close count as tied for prob_accuracy


def judge_calibration(items: pa.Table, results: pa.Table) -> dict[str, Any] | None:
    """How well a judge's probability verdicts are calibrated; None when no comparison row of these items has
    usable `probs` (text verdicts, other kinds).

    brier             mean (p - y)^2 over the items with probs (p, y as above: the base order's first-shown candidate)
    ece               expected calibration error: CALIBRATION_BINS equal-width bins on [0, 1] (the last one closed),
                      the count-weighted mean of |mean p - mean y| per bin
    reliability       per non-empty bin: {lower, upper, count, mean_p, mean_y} (the reliability diagram)
    prob_accuracy     share of items whose order-averaged probability is highest on a correct candidate (a tie of k
                      candidates counts the share of correct ones among them: 1/k with one correct)
    fragile_rate      share of comparison judgments with probs (one per item and presented order) whose margin, the
                      difference between the two largest probabilities, is below FRAGILE_MARGIN
    mean_margin       the mean of those margins
    n_prob_items, n_prob_judgments   items and comparison judgments with probs
    bins, fragile_margin             the constants used (CALIBRATION_BINS, FRAGILE_MARGIN)
    """
    item_ids = pa.array(items.column("item_id").to_pylist(), pa.string())
    mine = results.filter(pc.is_in(results.column("item_id"), value_set=item_ids))
    return _calibration(comparisons(items, mine), items.column("correct").to_pylist(), candidate_counts(items))


def item_probabilities(items: pa.Table, results: pa.Table) -> list[list[float] | None]:
    """Per item (in `items` order): the order-averaged probability of each candidate (indexed like candidates), or
    None for an item without a comparison row with usable probs."""
    return [None if s is None else s[0] for s in _item_states(comparisons(items, results), candidate_counts(items))]


def calibration_points(items: pa.Table, results: pa.Table) -> tuple[list[float], list[int]]:
    """The (p, y) pairs calibration is measured on, one per item with probs (see `judge_calibration`)."""
    correct = items.column("correct").to_pylist()
    p: list[float] = []
    y: list[int] = []
    for i, state in enumerate(_item_states(comparisons(items, results), candidate_counts(items))):
        if state is not None:
            averaged, first, _ = state
            p.append(averaged[first])
            y.append(int(first in correct[i]))
    return p, y


def reliability_bins(p: Sequence[float], y: Sequence[int], bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Per non-empty bin of `bins` equal-width bins on [0, 1] (lower <= p < upper, the last bin closed; p outside
    [0, 1] is clipped): {lower, upper, count, mean_p, mean_y}."""
    edges = [k / bins for k in range(bins + 1)]
    sums: list[list[float]] = [[0, 0.0, 0.0] for _ in range(bins)]
    for pk, yk in zip(p, y):
        pk = min(max(pk, 0.0), 1.0)
        k = min(bisect.bisect_right(edges, pk) - 1, bins - 1)
        sums[k][0] += 1
        sums[k][1] += pk
        sums[k][2] += yk
    return [{"lower": edges[k], "upper": edges[k + 1], "count": int(n), "mean_p": sp / n, "mean_y": sy / n}
            for k, (n, sp, sy) in enumerate(sums) if n]


def expected_calibration_error(reliability: Sequence[dict[str, Any]]) -> float:
    """The count-weighted mean of |mean_p - mean_y| over the bins of `reliability_bins`; NaN without points."""
    n = sum(b["count"] for b in reliability)
    return sum(b["count"] * abs(b["mean_p"] - b["mean_y"]) for b in reliability) / n if n else math.nan


def _usable_probs(c: Comparison, n_candidates: int) -> tuple[float, ...] | None:
    """A comparison row's probs if they can be used: no error, one finite probability per candidate."""
    if c.error is not None or c.probs is None or len(c.probs) != n_candidates:
        return None
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in c.probs):
        return None
    return c.probs


def _item_states(comps: list[dict[int, Comparison]],
                 n_candidates: list[int]) -> list[tuple[list[float], int, list[float]] | None]:
    """Per item: (order-averaged probs, the candidate shown first in the base order, the margin of each row with
    probs), or None for an item without usable probs."""
    out: list[tuple[list[float], int, list[float]] | None] = []
    for by_perm, n in zip(comps, n_candidates):
        rows = [(c, pr) for _, c in sorted(by_perm.items()) for pr in [_usable_probs(c, n)] if pr is not None]
        if not rows:
            out.append(None)
            continue
        averaged = [sum(pr[k] for _, pr in rows) / len(rows) for k in range(n)]
        base = rows[0][0]  # permutation 0 if it has probs, else the lowest permutation that has them
        first = base.order[0] if base.order and 0 <= base.order[0] < n else 0
        margins = []
        for _, pr in rows:
            top = sorted(pr, reverse=True)
            margins.append(top[0] - (top[1] if len(top) > 1 else 0.0))
        out.append((averaged, first, margins))
    return out


def _calibration(comps: list[dict[int, Comparison]], correct: list[list[int]],
                 n_candidates: list[int]) -> dict[str, Any] | None:
    p: list[float] = []
    y: list[int] = []
    margins: list[float] = []
    hits: list[float] = []
    for state, good in zip(_item_states(comps, n_candidates), correct):
        if state is None:
            continue
        averaged, first, row_margins = state
        p.append(averaged[first])
        y.append(int(first in good))
        margins += row_margins
        top = max(averaged)
        tied = [k for k, v in enumerate(averaged) if v >= top - _TIE]
        hits.append(sum(k in good for k in tied) / len(tied))
    if not p:
        return None
    reliability = reliability_bins(p, y)
    return {
        "brier": sum((pk - yk) ** 2 for pk, yk in zip(p, y)) / len(p),
        "ece": expected_calibration_error(reliability),
        "reliability": reliability,
        "prob_accuracy": sum(hits) / len(hits),
        "fragile_rate": sum(m < FRAGILE_MARGIN for m in margins) / len(margins),
        "mean_margin": sum(margins) / len(margins),
        "n_prob_items": len(p),
        "n_prob_judgments": len(margins),
        "bins": CALIBRATION_BINS,
        "fragile_margin": FRAGILE_MARGIN,
    }


__all__ = [
    "CALIBRATION_BINS",
    "FRAGILE_MARGIN",
    "INVALID_RATING",
    "Comparison",
    "calibration_points",
    "comparison_credit",
    "comparisons",
    "expected_calibration_error",
    "is_judge",
    "item_probabilities",
    "judge_calibration",
    "judge_metrics",
    "official_credits",
    "pairwise_rating_credit",
    "rated_items",
    "rating_credit",
    "rating_scores",
    "reliability_bins",
]
