"""Generative judges: the official numbers from verdicts and ratings (rmorch.suites.judging through the suites' score())
and the judge metrics beside them, on hand-built result tables over the real RewardBench items and the RewardBench 2
fixture. Expected numbers are computed by hand or by a direct re-implementation of the official rules here."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from rich.console import Console

from rmorch.core.schema import results_table
from rmorch.orchestrator.report.compute import build_leaderboard, score_entry
from rmorch.orchestrator.report.render import print_leaderboard, write_leaderboard
from rmorch.orchestrator.store.results import ManifestEntry, ResultStore
from rmorch.suites import get_suite_class
from rmorch.suites.base import candidate_scores
from rmorch.suites.judging import INVALID_RATING, judge_metrics, pairwise_rating_credit, rating_credit
from rmorch.suites.rewardbench import SECTIONS, SUBSET_WEIGHTS

RB2_FIXTURE = Path(__file__).parents[1] / "fixtures" / "rewardbench2" / "sample.jsonl"
E = "E"  # marker in hand-written rating lists: this candidate's request failed
M = "M"  # marker: no row for this candidate


# ---- items ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rb_items(rewardbench_file) -> pa.Table:
    """4 real RewardBench items per subset (92), all four sections present."""
    suite = get_suite_class("rewardbench")()
    return suite.sample(suite.load(str(rewardbench_file.parent)), 4, seed=0)


@pytest.fixture(scope="module")
def rb2_items() -> pa.Table:
    return get_suite_class("rewardbench2")().load(str(RB2_FIXTURE))


def _plain(items: pa.Table) -> pa.Table:
    """The non-Ties items of RewardBench 2."""
    return items.filter(pc.not_equal(items.column("subset"), "Ties"))


def _ties(items: pa.Table) -> pa.Table:
    return items.filter(pc.equal(items.column("subset"), "Ties"))


def _rows(items: pa.Table) -> list[dict[str, Any]]:
    return items.select(["suite", "subset", "item_id", "candidates", "correct"]).to_pylist()


# ---- result rows ---------------------------------------------------------------------------------------------


def _common(item: dict[str, Any], model: str) -> dict[str, Any]:
    return {"unit_key": "u", "model": model, "suite": item["suite"], "subset": item["subset"],
            "item_id": item["item_id"], "settings_hash": "h"}


def cmp(item: dict[str, Any], perm: int, order: list[int], verdict: int | None = None, *, error: str | None = None,
        model: str = "judge") -> dict[str, Any]:
    """A comparison row: `verdict` a candidate index, None = unparsed; `error` = the request failed."""
    return {**_common(item, model), "order": list(order), "permutation": perm,
            "verdict": None if error else verdict,
            "parsed": None if error else verdict is not None,
            "raw_output": None if error else "... [[X]]", "error": error}


def ratings(item: dict[str, Any], values: list[Any], model: str = "judge") -> list[dict[str, Any]]:
    """Rating rows of one item: a number is a parsed rating, None an unparsed one, E an error, M no row."""
    out = []
    for c, v in enumerate(values):
        if v == M:
            continue
        err = "HTTP 500" if v == E else None
        out.append({**_common(item, model), "candidate": c, "score": None if (err or v is None) else float(v),
                    "parsed": None if err else v is not None, "raw_output": None if err else "Rating: ...",
                    "error": err})
    return out


def pointwise(item: dict[str, Any], scores: list[float | None], model: str = "rm") -> list[dict[str, Any]]:
    """Reward-model rows (parsed null): None = an error row."""
    return [{**_common(item, model), "candidate": c, "score": s, "error": None if s is not None else "OOM"}
            for c, s in enumerate(scores)]


def rotations(order: list[int]) -> list[list[int]]:
    return [order[k:] + order[:k] for k in range(len(order))]


def seeded_base_orders(items: list[dict[str, Any]], seed: int) -> dict[str, list[int]]:
    """A base order per item: candidate 0 swapped into a random position (as the official scripts present them)."""
    rng = random.Random(seed)
    out = {}
    for it in items:
        order = list(range(len(it["candidates"])))
        k = rng.randrange(len(order))
        order[0], order[k] = order[k], order[0]
        out[it["item_id"]] = order
    return out


# ---- the official aggregations, re-implemented ---------------------------------------------------------------


def rb_expected(items: list[dict[str, Any]], credit: dict[str, float]) -> tuple[dict, dict, float]:
    """RewardBench v1: subset accuracy, sections weighted by item count (math-prm 984), final = mean of sections."""
    per: dict[str, list[float]] = defaultdict(list)
    for it in items:
        per[it["subset"]].append(credit[it["item_id"]])
    acc = {s: sum(v) / len(v) for s, v in per.items()}
    sections = {}
    for name, subs in SECTIONS.items():
        present = [s for s in subs if s in acc]
        if present:
            sections[name] = sum(acc[s] * SUBSET_WEIGHTS[s] for s in present) / sum(SUBSET_WEIGHTS[s] for s in present)
    return acc, sections, sum(sections.values()) / len(sections)


def subset_mean(items: list[dict[str, Any]], credit: dict[str, float]) -> dict[str, float]:
    per: dict[str, list[float]] = defaultdict(list)
    for it in items:
        per[it["subset"]].append(credit[it["item_id"]])
    return {s: sum(v) / len(v) for s, v in per.items()}


# ---- RewardBench v1 pairwise: the official number ------------------------------------------------------------


def test_rewardbench_pairwise_official_credit(rb_items):
    """Base-order verdict: correct 1, wrong 0, unparsed 0.5, error 0, missing base row 0; the extra order (p = 1,
    here always the opposite outcome) does not move the official number."""
    items = _rows(rb_items)
    rows, credit = [], {}
    kinds = defaultdict(int)
    for k, it in enumerate(items):
        base = [0, 1] if k % 2 == 0 else [1, 0]
        kind = ("correct", "wrong", "unparsed", "error", "missing")[k % 5]
        kinds[kind] += 1
        if kind == "correct":
            rows += [cmp(it, 0, base, 0), cmp(it, 1, base[::-1], 1)]
            credit[it["item_id"]] = 1.0
        elif kind == "wrong":
            rows += [cmp(it, 0, base, 1), cmp(it, 1, base[::-1], 0)]
            credit[it["item_id"]] = 0.0
        elif kind == "unparsed":
            rows += [cmp(it, 0, base, None), cmp(it, 1, base[::-1], 0)]
            credit[it["item_id"]] = 0.5
        elif kind == "error":
            rows += [cmp(it, 0, base, error="HTTP 503"), cmp(it, 1, base[::-1], 0)]
            credit[it["item_id"]] = 0.0
        else:  # only the extra order came back: the base order is missing
            rows += [cmp(it, 1, base[::-1], 0)]
            credit[it["item_id"]] = 0.0
    results = results_table(rows)
    suite = get_suite_class("rewardbench")()
    s = suite.score(rb_items, results)
    acc, sections, final = rb_expected(items, credit)
    assert s.subsets == pytest.approx(acc)
    assert s.sections == pytest.approx(sections)
    assert s.score == pytest.approx(final)
    assert s.n_items == len(items)
    assert s.n_errors == kinds["error"] + kinds["missing"]
    assert s.judge["official"] == s.score

    entry = score_entry(suite, "judge", rb_items, results)
    assert entry.score == s.score
    assert entry.n_errors == kinds["error"]  # items whose base-order request failed
    assert entry.n_missing == kinds["missing"]  # items without their base-order row
    assert entry.judge == s.judge


def test_only_the_base_order_counts(rb_items):
    """An item right in its extra order but wrong in its base order scores 0, and the reverse scores 1."""
    items = _rows(rb_items)
    rows = []
    for k, it in enumerate(items):
        if k % 2:
            rows += [cmp(it, 0, [0, 1], 1), cmp(it, 1, [1, 0], 0)]  # base wrong, extra right
        else:
            rows += [cmp(it, 0, [1, 0], 0), cmp(it, 1, [0, 1], 1)]  # base right, extra wrong
    s = get_suite_class("rewardbench")().score(rb_items, results_table(rows))
    credit = {it["item_id"]: float(k % 2 == 0) for k, it in enumerate(items)}
    assert s.score == pytest.approx(rb_expected(items, credit)[2])
    assert s.judge["both_orders_accuracy"] == 0.0
    assert s.judge["position_consistency"] == 0.0


def test_pairwise_ratings_in_rewardbench_v1(rb_items):
    """v1 with ratings (official run_judge_ratings): strictly higher 1, lower 0, a tie or any invalid rating 0.5,
    an error or a missing rating 0."""
    cases = [([8, 3], 1.0), ([3, 8], 0.0), ([6, 6], 0.5), ([None, 8], 0.5), ([8, None], 0.5), ([None, None], 0.5),
             ([8, E], 0.0), ([8, M], 0.0)]
    items = _rows(rb_items)
    rows, credit = [], {}
    for k, it in enumerate(items):
        values, c = cases[k % len(cases)]
        rows += ratings(it, values)
        credit[it["item_id"]] = c
    s = get_suite_class("rewardbench")().score(rb_items, results_table(rows))
    assert s.score == pytest.approx(rb_expected(items, credit)[2])
    assert s.judge["n_ratings"] == len(rows) and s.judge["n_comparisons"] == 0
    for values, c in cases:
        scores = [math.nan if v in (E, M) else INVALID_RATING if v is None else float(v) for v in values]
        assert pairwise_rating_credit(scores) == c, values


# ---- RewardBench 2: four-way verdicts and ratings ------------------------------------------------------------


def test_rewardbench2_nway_official_credit(rb2_items):
    """Four-way base-order verdict: correct 1, wrong 0, unparsed 0.25, error 0."""
    plain = _plain(rb2_items)
    items = _rows(plain)
    bases = seeded_base_orders(items, seed=1)
    rows, credit = [], {}
    for k, it in enumerate(items):
        base = bases[it["item_id"]]
        kind = k % 4
        verdict = {0: 0, 1: 2, 2: None, 3: None}[kind]
        rows.append(cmp(it, 0, base, verdict, error="timeout" if kind == 3 else None))
        credit[it["item_id"]] = {0: 1.0, 1: 0.0, 2: 0.25, 3: 0.0}[kind]
        for p, order in enumerate(rotations(base)[1:], start=1):  # extra orders: always correct, never counted
            rows.append(cmp(it, p, order, 0))
    s = get_suite_class("rewardbench2")().score(plain, results_table(rows))
    expected = subset_mean(items, credit)
    assert s.subsets == pytest.approx(expected)
    assert s.score == pytest.approx(sum(expected.values()) / len(expected))
    assert s.judge["n_orders"] == 4
    assert s.judge["n_comparisons"] == len(rows)


def test_rating_credit_rules():
    assert rating_credit([8, 3, 5, 2]) == 1.0
    assert rating_credit([7, 7, 2, 1]) == 0.5  # tied at the top with one other
    assert rating_credit([4, 4, 4, -1]) == pytest.approx(1 / 3)  # the invalid one is not in the argmax
    assert rating_credit([-1, 9, 1, 1]) == 0.0  # the chosen's rating is invalid: excluded
    assert rating_credit([6, -1, -1, -1]) == 1.0
    assert rating_credit([-1, -1, -1, -1]) == 0.25  # all invalid: chance
    assert rating_credit([9, math.nan, 1, 1]) == 0.0  # an error anywhere: wrong
    assert rating_credit([1, 5, 3], correct_index=1) == 1.0


RB2_RATINGS = {  # item id -> (ratings of the 4 candidates, chosen first; official credit)
    "1": ([8, 3, 5, 2], 1.0),
    "2": ([7, 7, 2, 1], 0.5),
    "3": ([None, 9, 1, 1], 0.0),
    "4": ([6, None, None, None], 1.0),
    "5": ([None, None, None, None], 0.25),
    "6": ([4, 4, 4, None], 1 / 3),
    "7": ([9, E, 1, 1], 0.0),
    "8": ([5, 6, None, 1], 0.0),
    "9": ([9, 1, 1, M], 0.0),
    "10": ([10, 10, 10, 10], 0.25),
    "11": ([3, 2, 1, 1], 1.0),
    "12": ([3, 2, 1, 1], 1.0),
    "13": ([3, 2, 1, 1], 1.0),
    "14": ([1, 2, 1, 1], 0.0),
    "15": ([3, 2, 1, 1], 1.0),
}


def test_rewardbench2_ratings_official_credit(rb2_items):
    plain = _plain(rb2_items)
    items = _rows(plain)
    rows = [r for it in items for r in ratings(it, RB2_RATINGS[it["item_id"]][0])]
    s = get_suite_class("rewardbench2")().score(plain, results_table(rows))
    assert s.subsets == pytest.approx({
        "Factuality": (1 + 0.5 + 0) / 3,
        "Precise IF": (1 + 0.25 + 1 / 3) / 3,
        "Math": 0.0,
        "Safety": (0.25 + 1 + 1) / 3,
        "Focus": 2 / 3,
    })
    assert s.n_errors == 2  # item 7 (error) and item 9 (missing rating)
    j = s.judge
    n_rows = sum(sum(v != M for v in r) for r, _ in RB2_RATINGS.values())
    unparsed = sum(sum(v is None for v in r) for r, _ in RB2_RATINGS.values())
    assert j["n_ratings"] == n_rows == len(rows) and j["n_comparisons"] == 0 and j["n_orders"] == 0
    assert j["parse_failure_rate"] == pytest.approx(unparsed / (n_rows - 1))  # the error row never reached a parser
    assert j["error_rate"] == pytest.approx(1 / n_rows)
    for key in ("both_orders_accuracy", "position_consistency", "first_position_rate"):
        assert math.isnan(j[key])
    assert j["position_win_rates"] == []


TIES_RATINGS = {  # ref:<n>: 1 correct first; tied:<n>: num_correct correct first
    "ref:1": [9, 2, None, 3],
    "tied:1": [8, 9, 8, 2, None],
    "ref:2": [None, 5, 5, 5],
    "tied:2": [7, 7, E],
    "ref:3": [6, 6, 1],
    "tied:3": [None, None, None],
}
# By hand, with unparsed = -1 and errors NaN:
#   ref:1  cim = 9 - 3 = 6 accurate          tied:1 cim = 8 - 2 = 6 (the -1 is below), dcm = 9 - 8 = 1, accurate
#   ref:2  cim = -1 - 5 = -6 not accurate    tied:2 cim = NaN not accurate, dcm = 0
#   ref:3  cim = 6 - 6 = 0 not accurate      tied:3 cim = -1 - -1 = 0, dcm = 0, not accurate
#   ref_acc = tied_acc = 1/3; CP: 6 > 1, NaN > 0, 0 > 0 -> 1/3; CPH: min(6, 6) > 1, NaN, 0 > 0 -> 1/3
#   M: tanh(6 / 1 - 1) = tanh(5), NaN -> 0, 0/0 -> 0 -> tanh(5) / 3
TIES_EXPECTED = 0.30 / 3 + 0.30 / 3 + 0.20 / 3 + 0.20 / 3 + 0.01 * math.tanh(5) / 3


def test_ties_from_ratings(rb2_items):
    ties = _ties(rb2_items)
    rows = [r for it in _rows(ties) for r in ratings(it, TIES_RATINGS[it["item_id"]])]
    s = get_suite_class("rewardbench2")().score(ties, results_table(rows))
    assert s.subsets == {"Ties": pytest.approx(TIES_EXPECTED)}
    parts = s.extra["ties"]
    assert parts["ref_accuracy"] == pytest.approx(1 / 3) and parts["tied_accuracy"] == pytest.approx(1 / 3)
    assert parts["margin_score"] == pytest.approx(math.tanh(5) / 3)
    assert s.score == pytest.approx(TIES_EXPECTED)


def test_mixed_rewardbench2_nway_and_ties_ratings(rb2_items):
    """A four-way judge: non-Ties items compared (here in 4 cyclic orders), Ties items rated."""
    items = _rows(rb2_items)
    bases = seeded_base_orders(items, seed=2)
    rows, credit = [], {}
    n_unparsed = n_parsed_known = 0
    for k, it in enumerate(items):
        if it["subset"] == "Ties":
            rs = ratings(it, TIES_RATINGS[it["item_id"]])
            rows += rs
            n_parsed_known += sum(r["parsed"] is not None for r in rs)
            n_unparsed += sum(r["parsed"] is False for r in rs)
            continue
        for p, order in enumerate(rotations(bases[it["item_id"]])):
            verdict = None if (k + p) % 5 == 4 else order[p % 2]  # shown first or second; sometimes unparsed
            rows.append(cmp(it, p, order, verdict))
            n_parsed_known += 1
            n_unparsed += verdict is None
            if p == 0:
                credit[it["item_id"]] = 0.25 if verdict is None else float(verdict == 0)
    s = get_suite_class("rewardbench2")().score(rb2_items, results_table(rows))
    expected = {**subset_mean([it for it in items if it["subset"] != "Ties"], credit), "Ties": TIES_EXPECTED}
    assert s.subsets == pytest.approx(expected)
    assert s.score == pytest.approx(sum(expected.values()) / 6)
    j = s.judge
    assert j["official"] == s.score
    assert j["n_comparisons"] == 15 * 4 and j["n_orders"] == 4
    assert j["n_ratings"] == sum(len(v) for v in TIES_RATINGS.values())
    assert j["parse_failure_rate"] == pytest.approx(n_unparsed / n_parsed_known)
    assert j["error_rate"] == pytest.approx(1 / len(rows))  # the one Ties error
    assert len(j["position_win_rates"]) == 4
    assert j["position_win_rates"][2:] == [0.0, 0.0]
    assert sum(j["position_win_rates"]) == pytest.approx(1.0)


# ---- judge metrics -------------------------------------------------------------------------------------------


def test_both_orders_accuracy_consistency_and_position_rates(rb_items):
    it = _rows(rb_items)[:7]
    items = rb_items.slice(0, 7)
    rows = [
        cmp(it[0], 0, [0, 1], 0), cmp(it[0], 1, [1, 0], 0),  # right both times: both-orders, consistent
        cmp(it[1], 0, [1, 0], 1), cmp(it[1], 1, [0, 1], 0),  # always "A": flips with the order
        cmp(it[2], 0, [0, 1], 1), cmp(it[2], 1, [1, 0], 1),  # wrong both times: consistent, not correct
        cmp(it[3], 0, [0, 1], 0), cmp(it[3], 1, [1, 0], None),  # second order unparsed
        cmp(it[4], 0, [1, 0], 0), cmp(it[4], 1, [0, 1], error="HTTP 500"),  # second order failed
        cmp(it[5], 0, [0, 1], 0),  # one order only: counts for both-orders, not for consistency
        cmp(it[6], 0, [0, 1], None), cmp(it[6], 1, [1, 0], 0),  # base order unparsed
    ]
    results = results_table(rows)
    j = judge_metrics(items, results, official=0.123)
    assert j["official"] == 0.123
    assert j["both_orders_accuracy"] == pytest.approx(2 / 7)  # items 0 and 5
    assert j["position_consistency"] == pytest.approx(2 / 6)  # items 0 and 2 of the six with two orders
    assert (j["n_compared_items"], j["n_multi_order_items"], j["n_orders"]) == (7, 6, 2)
    # parsed rows, shown position of the verdict: first: it0p0 it1p0 it1p1 it2p1 it3p0 it5p0; second: it0p1 it2p0
    # it4p0 it6p1
    assert j["first_position_rate"] == pytest.approx(0.6)
    assert j["position_win_rates"] == pytest.approx([0.6, 0.4])
    assert j["parse_failure_rate"] == pytest.approx(2 / 12)  # 13 rows, 1 error; unparsed it3p1 and it6p0
    assert j["error_rate"] == pytest.approx(1 / 13)
    assert (j["n_comparisons"], j["n_ratings"]) == (13, 0)

    s = get_suite_class("rewardbench")().score(items, results)
    credit = dict(zip([i["item_id"] for i in it], [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5]))
    assert s.score == pytest.approx(rb_expected(it, credit)[2])
    assert s.judge == {**j, "official": s.score}


def test_always_first_pairwise_judge(rb_items):
    """A judge that always answers "A": first-position rate 1, never consistent, never right in both orders, and
    officially right exactly on the items whose base order shows the chosen first."""
    items = _rows(rb_items)
    bases = seeded_base_orders(items, seed=5)
    rows = [cmp(it, p, order, order[0]) for it in items
            for p, order in enumerate([bases[it["item_id"]], bases[it["item_id"]][::-1]])]
    s = get_suite_class("rewardbench")().score(rb_items, results_table(rows))
    j = s.judge
    assert j["first_position_rate"] == 1.0 and j["position_win_rates"] == [1.0, 0.0]
    assert j["position_consistency"] == 0.0 and j["both_orders_accuracy"] == 0.0
    assert j["parse_failure_rate"] == 0.0 and j["error_rate"] == 0.0
    credit = {iid: float(order[0] == 0) for iid, order in bases.items()}
    acc, _sections, final = rb_expected(items, credit)
    assert s.subsets == pytest.approx(acc)
    for subset, value in acc.items():  # per subset: the share of items whose base order shows the chosen first
        shown_first = [bases[it["item_id"]][0] == 0 for it in items if it["subset"] == subset]
        assert value == pytest.approx(sum(shown_first) / len(shown_first))
    assert s.score == pytest.approx(final) and j["official"] == s.score
    assert 0.2 < sum(credit.values()) / len(credit) < 0.8  # the seeded base orders do vary


def test_always_first_four_way_judge(rb2_items):
    plain = _plain(rb2_items)
    items = _rows(plain)
    bases = seeded_base_orders(items, seed=7)
    rows = [cmp(it, p, order, order[0]) for it in items for p, order in enumerate(rotations(bases[it["item_id"]]))]
    s = get_suite_class("rewardbench2")().score(plain, results_table(rows))
    j = s.judge
    assert j["position_win_rates"] == [1.0, 0.0, 0.0, 0.0] and j["first_position_rate"] == 1.0
    assert j["n_orders"] == 4 and j["position_consistency"] == 0.0 and j["both_orders_accuracy"] == 0.0
    credit = {iid: float(order[0] == 0) for iid, order in bases.items()}
    assert s.subsets == pytest.approx(subset_mean(items, credit))


# ---- reward models: unchanged --------------------------------------------------------------------------------


def test_reward_model_scoring_unchanged(rb_items, rb2_items):
    rng = random.Random(11)
    items = _rows(rb_items)
    rows, credit = [], {}
    for k, it in enumerate(items):
        s = [float(rng.randint(0, 3)), float(rng.randint(0, 3))]  # small range: ties happen (and are wrong)
        if k % 17 == 0:
            s[1] = None  # an error row
        rows += pointwise(it, s)
        credit[it["item_id"]] = float(s[1] is not None and s[0] > s[1])
    results = results_table(rows)
    suite = get_suite_class("rewardbench")()
    got = suite.score(rb_items, results)
    assert got.score == pytest.approx(rb_expected(items, credit)[2])
    assert got.judge is None
    entry = score_entry(suite, "rm", rb_items, results)
    assert entry.judge is None and entry.n_errors == len(range(0, len(items), 17))

    plain = _plain(rb2_items)
    items2 = _rows(plain)
    rows2, credit2 = [], {}
    for it in items2:
        s = [float(rng.randint(0, 2)) for _ in it["candidates"]]
        rows2 += pointwise(it, s)
        top = max(s)
        credit2[it["item_id"]] = 1 / s.count(top) if s[0] == top else 0.0
    got2 = get_suite_class("rewardbench2")().score(plain, results_table(rows2))
    assert got2.subsets == pytest.approx(subset_mean(items2, credit2)) and got2.judge is None


def test_candidate_scores_default_ignores_parsed(rb2_items):
    """Without `unparsed`, an unparsed rating is missing (NaN), as before; with it, the given value."""
    it = _rows(rb2_items)[0]
    rows = results_table(ratings(it, [5, None, 3, 2]))
    items = rb2_items.slice(0, 1)
    scores, bad = candidate_scores(items, rows)
    assert math.isnan(scores[0][1]) and bad == [True]
    scores, bad = candidate_scores(items, rows, unparsed=INVALID_RATING)
    assert scores == [[5.0, -1.0, 3.0, 2.0]] and bad == [False]


# ---- the leaderboard -----------------------------------------------------------------------------------------


def _write_store(root: Path, suite: str, items: pa.Table, results: dict[str, pa.Table]) -> ResultStore:
    store = ResultStore(str(root))
    store.write_items(suite, items)
    for model, table in results.items():
        key = f"{model}-0"
        store.write_unit(ManifestEntry(key=key, model=model, suite=suite, shard=0,
                                       file=ResultStore.unit_file(model, suite, key), n_rows=table.num_rows,
                                       n_errors=table.num_rows - table.column("error").null_count, seconds=0.0),
                         table)
    store.write_json("run.json", {"suites": [suite], "models": {m: {"settings_hash": "h"} for m in results}})
    return store


def test_leaderboard_carries_the_judge_object(rb_items, tmp_path):
    items = _rows(rb_items)
    bases = seeded_base_orders(items, seed=3)
    judge_rows, rm_rows = [], []
    for k, it in enumerate(items):
        base = bases[it["item_id"]]
        # base order: right (every 9th unparsed); reversed order: picks the base order's first, right iff that is 0
        judge_rows += [cmp(it, 0, base, None if k % 9 == 0 else 0), cmp(it, 1, base[::-1], base[0])]
        rm_rows += pointwise(it, [float(k % 3), 1.0])
    judge_results = results_table(judge_rows)
    store = _write_store(tmp_path / "out", "rewardbench", rb_items,
                         {"judge": judge_results, "rm": results_table(rm_rows)})
    entries = build_leaderboard(store)
    write_leaderboard(store, entries)

    by_model = {e["model"]: e for e in json.loads((tmp_path / "out" / "leaderboard.json").read_text())}
    assert "judge" not in by_model["rm"]
    j = by_model["judge"]["judge"]
    expected = judge_metrics(rb_items, judge_results, official=by_model["judge"]["score"])
    assert j == expected  # JSON round-trips floats exactly
    assert list(j) == ["official", "both_orders_accuracy", "position_consistency", "first_position_rate",
                       "position_win_rates", "parse_failure_rate", "verdicts_read", "verdict_rows", "verdict_mode",
                       "error_rate", "n_comparisons", "n_orders", "n_ratings", "n_compared_items",
                       "n_multi_order_items"]
    assert j["official"] == by_model["judge"]["score"]
    assert (j["verdicts_read"], j["verdict_rows"], j["verdict_mode"]) == (
        2 * len(items) - len(range(0, len(items), 9)), 2 * len(items), "text")
    assert j["n_comparisons"] == 2 * len(items) and j["n_orders"] == 2 and j["n_ratings"] == 0
    unparsed = len(range(0, len(items), 9))
    assert j["parse_failure_rate"] == pytest.approx(unparsed / (2 * len(items)))
    assert j["both_orders_accuracy"] == pytest.approx(
        sum(k % 9 != 0 and bases[it["item_id"]][0] == 0 for k, it in enumerate(items)) / len(items))

    table = list(csv.DictReader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    row = {r["model"]: r for r in table}
    assert float(row["judge"]["judge:both_orders_accuracy"]) == pytest.approx(j["both_orders_accuracy"], abs=1e-6)
    assert float(row["judge"]["judge:position_win_rates[1]"]) == pytest.approx(j["position_win_rates"][1], abs=1e-6)
    assert row["judge"]["judge:n_comparisons"] == str(2 * len(items))
    assert row["rm"]["judge:both_orders_accuracy"] == ""
    header = next(csv.reader(io.StringIO((tmp_path / "out" / "leaderboard.csv").read_text())))
    assert header.index("subset:hep-rust") < header.index("judge:official")  # judge columns come last

    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| both orders | consistency | first pos | parse fail |" in md
    judge_line = next(line for line in md.splitlines() if line.startswith("| judge |"))
    assert judge_line.endswith(f"| {100 * j['parse_failure_rate']:.1f} | {j['verdicts_read']}/{j['verdict_rows']} (text) |")
    rm_line = next(line for line in md.splitlines() if line.startswith("| rm |"))
    assert rm_line.endswith("| - | - | - | - |")

    console = Console(record=True, width=400)
    print_leaderboard(entries, console)
    text = console.export_text()
    assert "both orders" in text and "first pos" in text


def test_leaderboard_without_judges_has_no_judge_columns(rb_items, tmp_path):
    rows = [r for k, it in enumerate(_rows(rb_items)) for r in pointwise(it, [float(k % 2), 0.5])]
    store = _write_store(tmp_path / "out", "rewardbench", rb_items, {"rm": results_table(rows)})
    write_leaderboard(store, build_leaderboard(store))
    assert "judge" not in json.loads((tmp_path / "out" / "leaderboard.json").read_text())[0]
    assert "judge:" not in (tmp_path / "out" / "leaderboard.csv").read_text()
    assert "both orders" not in (tmp_path / "out" / "leaderboard.md").read_text()


def test_ratings_judge_json_has_nulls_for_undefined_rates(rb2_items, tmp_path):
    plain = _plain(rb2_items)
    rows = [r for it in _rows(plain) for r in ratings(it, RB2_RATINGS[it["item_id"]][0])]
    store = _write_store(tmp_path / "out", "rewardbench2", plain, {"rater": results_table(rows)})
    write_leaderboard(store, build_leaderboard(store))
    (entry,) = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    j = entry["judge"]
    assert j["first_position_rate"] is None and j["both_orders_accuracy"] is None
    assert j["position_win_rates"] == [] and j["n_ratings"] == len(rows)
    assert entry["n_errors"] == 1 and entry["n_missing"] == 0
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| n/a | n/a | n/a |" in md
