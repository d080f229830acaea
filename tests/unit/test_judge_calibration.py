"""Calibration of probability verdicts (rmorch.suites.judging.judge_calibration) on hand-built item and result
tables with known answers, and the report around it: leaderboard JSON/CSV/Markdown, the printed leaderboard, the
reliability plots and report.html."""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

import pyarrow as pa
import pytest
from rich.console import Console

from rmorch.core.schema import items_table, results_table
from rmorch.orchestrator.report.compute import build_report
from rmorch.orchestrator.report.plots import calibration_plot_file
from rmorch.orchestrator.report.render import CALIBRATION_TITLE, print_leaderboard, write_report
from rmorch.suites.judging import (
    CALIBRATION_BINS,
    FRAGILE_MARGIN,
    calibration_points,
    expected_calibration_error,
    item_probabilities,
    judge_calibration,
    judge_metrics,
    reliability_bins,
)
from tests.unit.test_judge_metrics import _write_store

SUITE = "file"  # the user-file suite: plain mean credit over items, and a kind of its own name (no alias needed)


# ---- tables -------------------------------------------------------------------------------------------------


def make_items(correct: list[list[int]], n_candidates: int | list[int] = 2) -> pa.Table:
    sizes = n_candidates if isinstance(n_candidates, list) else [n_candidates] * len(correct)
    return items_table(
        {"suite": SUITE, "subset": "default", "item_id": f"i{k}", "prompt": [{"role": "user", "content": "q"}],
         "candidates": [f"answer {c}" for c in range(n)], "correct": good}
        for k, (good, n) in enumerate(zip(correct, sizes))
    )


def cmp(k: int, perm: int, order: list[int], probs: list[float] | None, *, error: str | None = None,
        model: str = "judge") -> dict[str, Any]:
    """A comparison row of item i<k>: `probs` indexed like the candidates (None: a text verdict or unparsed)."""
    verdict = None if error or probs is None else max(range(len(probs)), key=lambda c: probs[c])
    return {"unit_key": "u", "model": model, "suite": SUITE, "subset": "default", "item_id": f"i{k}",
            "order": order, "permutation": perm, "verdict": verdict, "probs": probs,
            "parsed": None if error else verdict is not None, "raw_output": None if error else "A",
            "error": error, "settings_hash": "h"}


# ---- the numbers ------------------------------------------------------------------------------------------


def test_constants_are_the_documented_ones():
    assert CALIBRATION_BINS == 10 and FRAGILE_MARGIN == 0.1


def test_always_ninety_percent_on_a_coin_flip():
    """p = 0.9 for the first-shown candidate, which is right half the time: Brier 0.5 * 0.01 + 0.5 * 0.81 = 0.41,
    ECE |0.9 - 0.5| = 0.4. Half the items show candidate 1 first: probs are indexed like the candidates."""
    n = 100
    correct, rows = [], []
    for k in range(n):
        order = [0, 1] if k % 4 < 2 else [1, 0]
        first = order[0]
        correct.append([first] if k % 2 == 0 else [1 - first])
        probs = [0.9, 0.1] if first == 0 else [0.1, 0.9]
        rows.append(cmp(k, 0, order, probs))
    items = make_items(correct)
    cal = judge_calibration(items, results_table(rows))
    assert cal["brier"] == pytest.approx(0.41)
    assert cal["ece"] == pytest.approx(0.4)
    assert cal["reliability"] == [pytest.approx({"lower": 0.9, "upper": 1.0, "count": n, "mean_p": 0.9,
                                                 "mean_y": 0.5})]
    assert cal["prob_accuracy"] == pytest.approx(0.5)
    assert cal["fragile_rate"] == 0.0 and cal["mean_margin"] == pytest.approx(0.8)
    assert cal["n_prob_items"] == n and cal["n_prob_judgments"] == n
    assert cal["bins"] == 10 and cal["fragile_margin"] == 0.1
    p, y = calibration_points(items, results_table(rows))
    assert p == pytest.approx([0.9] * n) and sum(y) == n // 2


def _synthetic(n: int, seed: int, report: Any = lambda p: p) -> tuple[pa.Table, pa.Table]:
    """n pairwise items: the first-shown candidate is correct with probability p ~ U(0, 1); the judge reports
    report(p) for it."""
    rng = random.Random(seed)
    correct, rows = [], []
    for k in range(n):
        p = rng.random()
        first = k % 2
        correct.append([first] if rng.random() < p else [1 - first])
        q = report(p)
        probs = [q, 1 - q] if first == 0 else [1 - q, q]
        rows.append(cmp(k, 0, [first, 1 - first], probs))
    return make_items(correct), results_table(rows)


def test_perfectly_calibrated_judge_has_ece_near_zero():
    items, results = _synthetic(4000, seed=0)
    cal = judge_calibration(items, results)
    # sampling error only: ~400 items per bin, so |mean p - mean y| ~ 0.02 per bin at most on average
    assert cal["ece"] < 0.03
    assert cal["brier"] == pytest.approx(1 / 6, abs=0.01)  # E[p (1 - p)] for p ~ U(0, 1)
    assert len(cal["reliability"]) == CALIBRATION_BINS
    assert sum(b["count"] for b in cal["reliability"]) == 4000
    for b in cal["reliability"]:
        assert b["lower"] <= b["mean_p"] <= b["upper"]
        assert b["mean_y"] == pytest.approx(b["mean_p"], abs=0.1)
    # the same outcomes reported as p^2 (overconfident against the first-shown candidate): ECE ~ E|p^2 - p| = 1/6
    over = judge_calibration(*_synthetic(4000, seed=0, report=lambda p: p * p))
    assert over["ece"] == pytest.approx(1 / 6, abs=0.03)


def test_order_averaging_of_two_permutations():
    """Item 0: base order [1, 0] says P(candidate 1) = 0.8, the swapped order 0.6: p_item = [0.3, 0.7]; the base
    order shows candidate 1 first, which is wrong: p = 0.7, y = 0. Rows arrive permutation 1 first."""
    items = make_items([[0], [1]])
    rows = [cmp(0, 1, [0, 1], [0.4, 0.6]), cmp(0, 0, [1, 0], [0.2, 0.8]),
            cmp(1, 0, [0, 1], [0.3, 0.7]), cmp(1, 1, [1, 0], [0.1, 0.9])]
    results = results_table(rows)
    assert item_probabilities(items, results) == [pytest.approx([0.3, 0.7]), pytest.approx([0.2, 0.8])]
    p, y = calibration_points(items, results)
    assert p == pytest.approx([0.7, 0.2]) and y == [0, 0]  # item 1: candidate 0 shown first, wrong, p 0.2
    cal = judge_calibration(items, results)
    assert cal["brier"] == pytest.approx((0.49 + 0.04) / 2)
    assert cal["prob_accuracy"] == pytest.approx(0.5)  # item 0 favours candidate 1 (wrong), item 1 candidate 1 (right)
    assert cal["n_prob_items"] == 2 and cal["n_prob_judgments"] == 4


def test_orientation_without_a_base_order_row_with_probs():
    """Permutation 0 unparsed (no probs): the lowest permutation with probs gives the first-shown candidate."""
    rows = [cmp(0, 0, [0, 1, 2], None), cmp(0, 2, [1, 2, 0], [0.2, 0.5, 0.3]), cmp(0, 1, [2, 0, 1], [0.4, 0.2, 0.4])]
    items = make_items([[0]], n_candidates=3)
    results = results_table(rows)
    assert item_probabilities(items, results) == [pytest.approx([0.3, 0.35, 0.35])]
    p, y = calibration_points(items, results)
    assert p == pytest.approx([0.35]) and y == [0]  # permutation 1 shows candidate 2 first
    cal = judge_calibration(items, results)
    assert cal["prob_accuracy"] == 0.0  # the tie of candidates 1 and 2 holds no correct one


def test_ties_in_prob_accuracy_count_one_over_k():
    items = make_items([[0], [0], [1]], n_candidates=[2, 3, 2])
    rows = [cmp(0, 0, [0, 1], [0.5, 0.5]), cmp(1, 0, [0, 1, 2], [0.4, 0.4, 0.2]), cmp(2, 0, [0, 1], [0.2, 0.8])]
    cal = judge_calibration(items, results_table(rows))
    assert cal["prob_accuracy"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)


def test_fragile_rate_and_margins():
    items = make_items([[0], [0], [1], [0]], n_candidates=[2, 2, 2, 4])
    rows = [
        cmp(0, 0, [0, 1], [0.52, 0.48]),  # margin 0.04: fragile
        cmp(0, 1, [1, 0], [0.7, 0.3]),  # 0.4
        cmp(1, 0, [0, 1], [0.9, 0.1]),  # 0.8
        cmp(2, 0, [1, 0], [0.35, 0.65]),  # 0.3
        cmp(3, 0, [0, 1, 2, 3], [0.1, 0.4, 0.35, 0.15]),  # 0.05 between the two largest: fragile
    ]
    cal = judge_calibration(items, results_table(rows))
    assert cal["n_prob_judgments"] == 5
    assert cal["fragile_rate"] == pytest.approx(2 / 5)
    assert cal["mean_margin"] == pytest.approx((0.04 + 0.4 + 0.8 + 0.3 + 0.05) / 5)


def test_null_probs_error_rows_and_ratings_are_ignored():
    items = make_items([[0], [1], [0]])
    rows = [
        cmp(0, 0, [0, 1], [0.8, 0.2]),
        {**cmp(0, 1, [1, 0], [0.0, 1.0]), "error": "HTTP 500", "parsed": None, "verdict": None},  # error: ignored
        cmp(0, 2, [0, 1], None),  # a text verdict: no probs
        cmp(0, 3, [1, 0], [0.5, 0.3, 0.2]),  # not one probability per candidate: ignored
        cmp(1, 0, [0, 1], None, error="timeout"),  # item 1 has no probs at all
        cmp(2, 0, [0, 1], None),
        # a rating row with probs over ratings 1..10: not a comparison
        {**cmp(2, 0, None, [0.1] * 10), "candidate": 0, "order": None, "permutation": None, "score": 5.5},
    ]
    results = results_table(rows)
    assert item_probabilities(items, results) == [pytest.approx([0.8, 0.2]), None, None]
    cal = judge_calibration(items, results)
    assert cal["n_prob_items"] == 1 and cal["n_prob_judgments"] == 1
    assert cal["brier"] == pytest.approx(0.04) and cal["fragile_rate"] == 0.0
    assert judge_metrics(items, results)["calibration"] == cal


def test_judges_without_probs_get_no_calibration():
    items = make_items([[0], [1]])
    text = results_table([cmp(0, 0, [0, 1], None), cmp(1, 0, [1, 0], None)])
    assert judge_calibration(items, text) is None
    metrics = judge_metrics(items, text)
    assert metrics is not None and "calibration" not in metrics
    errors = results_table([cmp(0, 0, [0, 1], [0.6, 0.4], error="OOM")])
    assert judge_calibration(items, errors) is None
    pointwise = results_table([{"unit_key": "u", "model": "rm", "suite": SUITE, "subset": "default",
                                "item_id": f"i{k}", "candidate": c, "score": 1.0, "settings_hash": "h"}
                               for k in range(2) for c in range(2)])
    assert judge_calibration(items, pointwise) is None and judge_metrics(items, pointwise) is None
    # a table without the probs column (an older read) is a judge without probability verdicts
    assert judge_calibration(items, text.drop_columns(["probs"])) is None


def test_reliability_bins_edges():
    bins = reliability_bins([0.0, 0.3, 0.35, 0.999, 1.0, 1.0000000001], [0, 1, 0, 1, 1, 1])
    assert [(b["lower"], b["upper"], b["count"]) for b in bins] == [(0.0, 0.1, 1), (0.3, 0.4, 2), (0.9, 1.0, 3)]
    assert bins[1]["mean_p"] == pytest.approx(0.325) and bins[1]["mean_y"] == 0.5
    assert expected_calibration_error(bins) == pytest.approx((1 * 0.0 + 2 * 0.175 + 3 * (1 - 2.999 / 3)) / 6)
    assert expected_calibration_error([]) != expected_calibration_error([])  # NaN without points


# ---- the report --------------------------------------------------------------------------------------------


def test_report_shows_calibration_only_for_probability_judges(tmp_path):
    n = 40
    correct = [[k % 2] for k in range(n)]
    items = make_items(correct)
    prob_rows, text_rows = [], []
    for k in range(n):
        right = 0.8 if k % 5 else 0.3  # candidate k % 2 is correct; the judge gives it 0.8 (0.3 every fifth item)
        probs = [right, 1 - right] if k % 2 == 0 else [1 - right, right]
        prob_rows += [cmp(k, 0, [0, 1], probs, model="prober"), cmp(k, 1, [1, 0], probs, model="prober")]
        text_rows.append(cmp(k, 0, [0, 1], None, model="texter"))
    prober = results_table(prob_rows)
    out = tmp_path / "out"
    _write_store(out, SUITE, items, {"prober": prober, "texter": results_table(text_rows)})
    report = build_report([str(out)], resamples=0)
    written = write_report(str(out), report)

    by_model = {e["model"]: e for e in json.loads((out / "leaderboard.json").read_text())}
    cal = by_model["prober"]["judge"]["calibration"]
    assert cal == judge_calibration(items, prober)  # read back through the store's narrowed columns
    assert cal["n_prob_items"] == n and cal["n_prob_judgments"] == 2 * n
    assert cal["prob_accuracy"] == pytest.approx(32 / 40)
    assert "calibration" not in by_model["texter"]["judge"]

    rows = {r["model"]: r for r in csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text()))}
    assert float(rows["prober"]["judge:calibration.brier"]) == pytest.approx(cal["brier"], abs=1e-6)
    assert float(rows["prober"]["judge:calibration.ece"]) == pytest.approx(cal["ece"], abs=1e-6)
    assert rows["prober"]["judge:calibration.n_prob_items"] == str(n)
    assert rows["texter"]["judge:calibration.brier"] == ""

    md = (out / "leaderboard.md").read_text()
    assert f"## {CALIBRATION_TITLE}" in md and "| judge | suite | Brier | ECE | fragile % | n |" in md
    assert f"| prober | {SUITE} | {cal['brier']:.3f} | {cal['ece']:.3f} | 0.0 | {n} |" in md
    assert "| texter | file |" not in md.split(CALIBRATION_TITLE)[1]
    assert "10 equal-width bins" in md and "less than 0.1 apart" in md

    console = Console(record=True, width=300)
    print_leaderboard(report.entries, console)
    text = console.export_text()
    assert CALIBRATION_TITLE in text and "Brier" in text
    line = next(x for x in text.splitlines() if "prober" in x and f"{cal['brier']:.3f}" in x)
    assert f"{cal['ece']:.3f}" in line

    plot = calibration_plot_file("prober", SUITE)
    assert plot in written and (out / plot).read_bytes().startswith(b"\x89PNG")
    assert not (out / calibration_plot_file("texter", SUITE)).exists()
    page = (out / "report.html").read_text()
    assert CALIBRATION_TITLE in page and 'href="#calibration"' in page
    section = page.split('<section id="calibration">')[1].split("</section>")[0]
    assert "prober" in section and "texter" not in section and "data:image/png;base64," in section


def test_report_without_probability_judges_has_no_calibration(tmp_path):
    items = make_items([[0], [1]])
    out = tmp_path / "out"
    _write_store(out, SUITE, items, {"texter": results_table([cmp(0, 0, [0, 1], None, model="texter"),
                                                       cmp(1, 0, [1, 0], None, model="texter")])})
    report = build_report([str(out)], resamples=0)
    write_report(str(out), report)
    assert "calibration" not in (out / "leaderboard.json").read_text()
    assert "calibration" not in (out / "leaderboard.csv").read_text()
    assert CALIBRATION_TITLE not in (out / "leaderboard.md").read_text()
    console = Console(record=True, width=300)
    print_leaderboard(report.entries, console)
    assert CALIBRATION_TITLE not in console.export_text()
    page = (out / "report.html").read_text()
    assert CALIBRATION_TITLE not in page and 'id="calibration"' not in page
    assert not list(out.glob("plots/calib-*"))
