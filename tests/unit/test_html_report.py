"""OUT/report.html: built from fixture files in the exact formats a sweep writes, then opened in a real headless
Chromium (Debian's `chromium`), driven over the DevTools protocol on a pipe: the page must show the leaderboard with
CIs, tie markers and the length baseline, the judge and length-bias tables, the embedded plots (decoded, non-zero
size), render a hostile model name as text, sort on a real mouse click, and load nothing from the network.
Missing or old inputs must cost their sections only (a note), never the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rmorch.orchestrator.report.html import ReportInputs, guarded, read_report_inputs, render_html, write_html_report
from rmorch.orchestrator.store.run_record import RunRecord

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_html_report.py
HOSTILE = "<script>alert(1)</script>"
HOSTILE_SUBSET = '<img src=x class="injected" onerror="alert(2)">'


# ---- fixture OUT directory ------------------------------------------------------------------------------------


def _entry(model: str, suite: str, score: float | None, rank: int, tied: bool, **more: Any) -> dict[str, Any]:
    half = 0.021
    ci = None if score is None else [round(score - half, 3), round(score + half, 3)]
    return {
        "model": model, "suite": suite, "score": score,
        "sections": {"Chat": score, "Safety": None if score is None else score / 2},
        "subsets": {"alpacaeval-easy": score, HOSTILE_SUBSET: 0.5},
        "n_items": 120, "n_errors": 0, "n_missing": 0,
        "ci": {"level": 0.95, "score": ci, "sections": {"Chat": ci}, "subsets": {"alpacaeval-easy": ci}},
        "rank": rank, "tied_with_best": tied, **more,
    }


def _length_bias(longer: float, shorter: float) -> dict[str, Any]:
    return {"length_bias": {"longer_correct": longer, "shorter_correct": shorter, "n_longer": 61, "n_shorter": 59}}


JUDGE = {
    "official": 0.6, "both_orders_accuracy": 0.41, "position_consistency": 0.55, "first_position_rate": 0.73,
    "position_win_rates": [0.73, 0.27], "parse_failure_rate": 0.02, "error_rate": 0.0, "n_comparisons": 240,
    "n_orders": 2, "n_ratings": 0, "n_compared_items": 120, "n_multi_order_items": 120,
}

LEADERBOARD = [
    _entry("rm-good", "rewardbench", 0.713, 1, False, **_length_bias(0.75, 0.68)),
    _entry("judge-small", "rewardbench", 0.6, 3, False, judge=JUDGE, **_length_bias(0.8, 0.4)),
    _entry(HOSTILE, "rewardbench", 0.701, 2, True, **_length_bias(0.7, 0.7)),
    _entry("length", "rewardbench", 0.486, 4, False, **_length_bias(1.0, 0.0)),
    _entry("broken-rm", "rewardbench", None, 5, False, n_errors=120),
    _entry("rm-good", "rewardbench2", 0.35, 1, False),
    _entry("length", "rewardbench2", 0.2, 2, False),
]

BON = [
    {"model": "rm-good", "suite": "rewardbench2", "k": [1, 2, 3, 4], "expected": [0.25, 0.31, 0.34, 0.35],
     "oracle": [0.25, 0.45, 0.6, 0.7], "random": 0.25, "n_items": 50},
    {"model": "length", "suite": "rewardbench2", "k": [1, 2, 3, 4], "expected": [0.25, 0.22, 0.21, 0.2],
     "oracle": [0.25, 0.45, 0.6, 0.7], "random": 0.25, "n_items": 50},
]

STATS = {
    "bootstrap": {"resamples": 1000, "seed": 0, "level": 0.95, "unit": "item"},
    "correction": "holm",
    "paired": [
        {"suite": "rewardbench", "model_a": "rm-good", "model_b": "length", "diff": 0.227, "ci": [0.15, 0.3],
         "p": 0.001, "p_adjusted": 0.004, "significant": True},
        {"suite": "rewardbench", "model_a": "rm-good", "model_b": HOSTILE, "diff": 0.012, "ci": [-0.02, 0.04],
         "p": 0.4, "p_adjusted": 0.8, "significant": False},
    ],
    "correlations": [
        {"benchmark": "rewardbench", "pool": "rewardbench2", "models": ["rm-good", "length"],
         "accuracy": [0.713, 0.486], "gain": [0.1, -0.05], "pearson": {"r": 0.93, "ci": [0.41, 0.99]},
         "spearman": {"r": 1.0, "ci": None}, "plot": "plots/corr-rewardbench-rewardbench2.png"},
    ],
}

RUN = {
    "rmorch_version": "0.1.0", "python": "3.11.7", "platform": "Linux-x86_64",
    "versions": {"ray": "2.60.0", "torch": "2.13.0+cpu", "vllm": None}, "seed": 7,
    "suites": ["rewardbench", "rewardbench2"],
    "models": {name: {"kind": kind, "settings_hash": "2659e0c21b00818c", "settings": {"kind": kind},
                      "resources": {"num_gpus": None, "num_cpus": 1.0, "replicas": 1}}
               for name, kind in [("rm-good", "classifier"), ("judge-small", "judge"), (HOSTILE, "classifier"),
                                  ("length", "length"), ("broken-rm", "classifier")]},
    "started": "2026-11-24T23:36:41+0000",
    "hardware": {"hosts": 1, "cpus": 2, "gpus": 0},
    "last_run": {"seconds": 3725.5, "model_seconds": {"rm-good": 1800.2, "length": 0.5},
                 "load_seconds": {"rm-good": [12.5], "length": [0.0]}},
}

SPEC = f"seed: 7\nmodels:\n- name: '{HOSTILE}'\n  kind: classifier\n# </pre><b class=\"injected\">x</b>\n"


def _png(path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([1, 2, 3, 4], [0.25, 0.31, 0.34, 0.35])
    ax.set_title(title)
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def full_out(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    for name, data in [("leaderboard", LEADERBOARD), ("bon", BON), ("stats", STATS), ("run", RUN)]:
        (out / f"{name}.json").write_text(json.dumps(data, indent=2))
    (out / "spec.yaml").write_text(SPEC)
    _png(out / "plots" / "bon-rewardbench2.png", "best-of-N")
    _png(out / "plots" / "corr-rewardbench-rewardbench2.png", "correlation")
    return out


# ---- pure rendering: escaping and missing inputs -----------------------------------------------------------------


def test_strings_from_the_data_are_escaped(full_out: Path) -> None:
    page = Path(write_html_report(str(full_out))).read_text()
    assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert HOSTILE_SUBSET not in page and 'class="injected"' not in page
    assert page.count("<script>") == 1  # the page's own sort script, nothing from the data


def test_no_network_resources(full_out: Path) -> None:
    page = Path(write_html_report(str(full_out))).read_text()
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page  # the CSP forbids any load that is not inline or a data: URI


@pytest.mark.parametrize("missing", ["bon.json", "stats.json", "run.json", "spec.yaml", "plots", "leaderboard.json"])
def test_a_missing_input_leaves_its_sections_out_with_a_note(full_out: Path, missing: str) -> None:
    target = full_out / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    page = Path(write_html_report(str(full_out))).read_text()
    expected_note = {
        "bon.json": "No bon.json in this run", "stats.json": "No stats.json in this run",
        "run.json": "No run.json in this run", "spec.yaml": "No spec.yaml in this run",
        "plots": "plots/bon-rewardbench2.png is not in this run", "leaderboard.json": "No leaderboard.json",
    }[missing]
    assert expected_note in page
    assert "could not be drawn" not in page


def test_old_run_and_leaderboard_without_new_keys(tmp_path: Path) -> None:
    """A run from before CIs, ranks, length bias, hardware and timings: the basics render, the rest is noted."""
    old_keys = ("ci", "rank", "tied_with_best", "length_bias")
    leaderboard = [{k: v for k, v in e.items() if k not in old_keys} for e in LEADERBOARD]
    run = {k: v for k, v in RUN.items() if k not in ("hardware", "last_run")}
    (tmp_path / "leaderboard.json").write_text(json.dumps(leaderboard))
    (tmp_path / "run.json").write_text(json.dumps(run))
    page = Path(write_html_report(str(tmp_path))).read_text()
    assert "71.3" in page and "[69.2" not in page and "No confidence intervals" in page
    assert "run.json has no last_run" in page and "records no hardware" in page
    assert "No length-bias split" in page and "could not be drawn" not in page


def test_empty_directory_and_unreadable_files(tmp_path: Path) -> None:
    page = Path(write_html_report(str(tmp_path))).read_text()
    assert "No leaderboard.json" in page and "No run.json" in page
    (tmp_path / "leaderboard.json").write_text("{not json")
    (tmp_path / "stats.json").write_text("[]")
    inputs = read_report_inputs(str(tmp_path))
    assert inputs.leaderboard is None and inputs.stats is None and len(inputs.problems) == 2
    assert "Could not read leaderboard.json" in render_html(inputs)


def test_values_of_the_wrong_shape_do_not_crash() -> None:
    weird = [{"model": 3, "suite": None, "score": "high", "ci": {"score": [0.1]}, "sections": [], "subsets": None,
              "rank": "one", "judge": {"position_win_rates": None, "official": float("nan")},
              "length_bias": {"longer_correct": None}}]
    page = render_html(ReportInputs(title="t", leaderboard=weird, bon=[{"k": None}],
                                    stats={"correlations": [{"pearson": 1}], "paired": "x"},
                                    run=RunRecord.from_json({"models": []})))
    assert "could not be drawn" not in page


def test_a_section_that_fails_becomes_a_note() -> None:
    def broken(inputs: ReportInputs) -> str:
        raise KeyError(HOSTILE)

    text = guarded(broken, ReportInputs(title="t"))
    assert "could not be drawn" in text and "KeyError" in text and HOSTILE not in text


def test_models_with_results_of_other_identities_are_named() -> None:
    """leaderboard.json's `other_identities` (rmorch.orchestrator.report.compute): one note per model."""
    board = [_entry("rm-good", "rewardbench", 0.7, 1, False, other_identities=1),
             _entry("rm-good", "rewardbench2", 0.3, 1, False, other_identities=2),
             _entry("length", "rewardbench", 0.5, 2, False)]
    page = render_html(ReportInputs(title="t", leaderboard=board))
    assert page.count("model rm-good: the store holds results of 3 identities") == 1
    assert "model length:" not in page


def test_a_model_stopped_by_the_error_cap_is_named_with_its_reason() -> None:
    """run.json `last_run.stopped_models` (max_error_rate per model): the run section says which model and why."""
    stopped = {"broken": {"max_error_rate": 0.5, "rows": 200, "error_rows": 200, "top_error": "ValueError: <bad>",
                          "top_error_rows": 200}, "odd": "not a mapping"}
    run = RunRecord.from_json({"last_run": {"stopped_models": stopped}})
    page = render_html(ReportInputs(title="t", run=run))
    assert "stopped: broken" in page and "200 of its 200 result rows were errors" in page
    assert "above max_error_rate 0.5" in page and "ValueError: &lt;bad&gt;" in page
    assert "stopped: odd" not in page and "could not be drawn" not in page
