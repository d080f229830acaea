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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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
    ignored."""
    index = {iid: i for i, iid in enumerate(items.column("item_id").to_pylist())}
    out: list[dict[int, Comparison]] = [{} for _ in index]
    rows = results.filter(pc.is_null(results.column("candidate")))
    cols = [rows.column(c).to_pylist() for c in ("item_id", "permutation", "order", "verdict", "parsed", "error")]
    for iid, perm, order, verdict, parsed, error in zip(*cols):
        i = index.get(iid)
        if i is None:
            continue
        p = 0 if perm is None else int(perm)
        if p not in out[i]:
            out[i][p] = Comparison(p, None if order is None else tuple(order), verdict, parsed, error)
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
    error_rate             error rows / all judge rows
    n_comparisons, n_ratings   rows of each kind (incl. errors); n_orders: most presented orders of one item
    n_compared_items, n_multi_order_items   the denominators of both_orders_accuracy and position_consistency
    Rates without a denominator are NaN (null in JSON).
    """
    if not is_judge(results):
        return None
    item_ids = pa.array(items.column("item_id").to_pylist(), pa.string())
    mine = results.filter(pc.is_in(results.column("item_id"), value_set=item_ids))
    correct = items.column("correct").to_pylist()
    compared = [(by_perm, set(correct[i])) for i, by_perm in enumerate(comparisons(items, mine)) if by_perm]
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

    return {
        "official": official,
        "both_orders_accuracy": _mean(both),
        "position_consistency": _mean(consistent),
        "first_position_rate": win_rates[0] if win_rates else math.nan,
        "position_win_rates": win_rates,
        "parse_failure_rate": parsed.count(False) / len(parsed) if parsed else math.nan,
        "error_rate": n_errors / mine.num_rows if mine.num_rows else math.nan,
        "n_comparisons": rows.num_rows,
        "n_orders": max((len(by_perm) for by_perm, _ in compared), default=0),
        "n_ratings": mine.num_rows - rows.num_rows,
        "n_compared_items": len(compared),
        "n_multi_order_items": len(multi),
    }


def _mean(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


__all__ = [
    "INVALID_RATING",
    "Comparison",
    "comparison_credit",
    "comparisons",
    "is_judge",
    "judge_metrics",
    "official_credits",
    "pairwise_rating_credit",
    "rated_items",
    "rating_credit",
    "rating_scores",
]
