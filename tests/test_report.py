"""The report a sweep ends with, end to end on real sweeps (real Ray, real data): intervals, ranks, ties, paired
tests, length bias, best-of-N curves and plots, correlation, report.html rendered in headless Chromium; and several
sweeps merged into one report (`rmorch report A B --out M`), including the refusal to merge different items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rmorch.orchestrator.cli import main
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep


def sweep(out: Path, shared_data: Path, models: list, limit: int = 6) -> Path:
    spec = spec_from_dict({
        "out": str(out), "seed": 0, "resamples": 300,
        "suites": [{"name": "rewardbench", "data": str(shared_data / "rewardbench"), "limit_per_subset": limit},
                   {"name": "gsm8k-bon", "data": str(shared_data / "gsm8k"), "limit_per_subset": 40}],
        "models": models,
    })
    run_sweep(spec)
    return out


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory, shared_data, local_ray) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report")
    a = sweep(root / "a", shared_data, ["length", "random"])
    b = sweep(root / "b", shared_data, [{"name": "length-again", "kind": "length"},
                                        {"name": "coin", "kind": "random"}])
    return a, b


def entries(out: Path) -> dict[tuple[str, str], dict]:
    return {(e["model"], e["suite"]): e for e in json.loads((out / "leaderboard.json").read_text())}


def test_a_sweep_ends_with_the_full_report(two_sweeps) -> None:
    a, _ = two_sweeps
    board = entries(a)
    for (model, suite), e in board.items():
        lo, hi = e["ci"]["score"]
        assert lo <= e["score"] <= hi, (model, suite)
        assert e["ci"]["level"] == 0.95 and e["rank"] in (1, 2)
        assert set(e["ci"]["subsets"]) == set(e["subsets"])
        assert e["tied_with_best"] is True or e["rank"] == 2
    assert board[("length", "rewardbench")]["length_bias"]["longer_correct"] == 1.0  # by definition of `length`
    assert board[("length", "rewardbench")]["length_bias"]["shorter_correct"] == 0.0
    stats = json.loads((a / "stats.json").read_text())
    assert stats["bootstrap"]["resamples"] == 300
    assert {(p["suite"], p["model_a"], p["model_b"]) for p in stats["paired"]} == {
        ("rewardbench", "length", "random"), ("gsm8k-bon", "length", "random")}
    bon = {(c["model"], c["suite"]): c for c in json.loads((a / "bon.json").read_text())}
    assert set(bon) == {("length", "gsm8k-bon"), ("random", "gsm8k-bon")}
    assert bon[("length", "gsm8k-bon")]["n_items"] == 40 and bon[("length", "gsm8k-bon")]["k"] == [1, 2, 3, 4]
    assert (a / "plots" / "bon-gsm8k-bon.png").stat().st_size > 10_000
    assert (a / "report.html").stat().st_size > 20_000


def test_merged_report_of_two_sweeps(two_sweeps, tmp_path, browser) -> None:
    a, b = two_sweeps
    merged = tmp_path / "merged"
    result = CliRunner().invoke(main, ["report", str(a), str(b), "--out", str(merged), "--resamples", "300"])
    assert result.exit_code == 0, result.output
    board = entries(merged)
    assert {m for m, _ in board} == {"length", "random", "length-again", "coin"}
    for suite in ("rewardbench", "gsm8k-bon"):  # the same baseline in two sweeps: identical numbers, a sure tie
        assert board[("length-again", suite)]["score"] == board[("length", suite)]["score"]
        assert board[("length-again", suite)]["ci"] == board[("length", suite)]["ci"]
    stats = json.loads((merged / "stats.json").read_text())
    same = next(p for p in stats["paired"] if {p["model_a"], p["model_b"]} == {"length", "length-again"})
    assert same["diff"] == 0 and same["p"] == 1.0 and not same["significant"]
    assert len(stats["paired"]) == 2 * 6  # all pairs of 4 models on each of 2 suites
    corr = stats["correlations"]
    assert [(c["benchmark"], c["pool"], len(c["models"])) for c in corr] == [("rewardbench", "gsm8k-bon", 4)]
    run = json.loads((merged / "run.json").read_text())
    assert run["merged_from"] == [str(a), str(b)]
    # a merged report's directory stands for the sweeps it merged: reporting it again works
    again = CliRunner().invoke(main, ["report", str(merged), "--resamples", "0"])
    assert again.exit_code == 0, again.output
    assert {m for m, _ in entries(merged)} == {"length", "random", "length-again", "coin"}

    browser.open((merged / "report.html").as_uri())
    text = browser.eval("document.body.innerText")
    for model in ("length", "random", "length-again", "coin"):
        assert model in text
    sizes = browser.eval("Array.from(document.images, i => [i.naturalWidth, i.naturalHeight])")
    assert len(sizes) >= 2 and all(w > 0 and h > 0 for w, h in sizes)  # the best-of-N and correlation plots


def test_merging_refuses_different_items_and_bad_targets(two_sweeps, tmp_path, shared_data, local_ray) -> None:
    a, _ = two_sweeps
    other = sweep(tmp_path / "other", shared_data, ["length"], limit=3)  # another sample of RewardBench
    result = CliRunner().invoke(main, ["report", str(a), str(other), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2 and "different items" in result.output
    result = CliRunner().invoke(main, ["report", str(a), str(other)])
    assert result.exit_code == 2 and "--out" in result.output
    result = CliRunner().invoke(main, ["report", str(a), str(other), "--out", str(a)])
    assert result.exit_code == 2 and "one of the sweeps" in result.output
