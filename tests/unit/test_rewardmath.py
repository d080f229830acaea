"""RewardMATH: loader (real local files, hub path, bad rows), the official strict-top accuracy against the
reference values from the published per-solution scores, hand-computed cases, and one sweep with `length`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import rmorch.suites.rewardmath  # noqa: F401  (registers the suite)
from rmorch.core.errors import DataError
from rmorch.core.schema import items_table, results_table
from rmorch.suites import get_suite_class
from rmorch.suites.rewardmath import RewardMATH, reciprocal_rank, strict_top_credit

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_rewardmath.py


@pytest.fixture(scope="module")
def rm_dir(shared_data) -> Path:
    return shared_data / "rewardmath"


def _direct_rows(rm_dir: Path) -> list[dict]:
    return json.loads((rm_dir / "RewardMATH_direct.json").read_text())


def _write(tmp_path: Path, rows: list[dict], name: str = "data.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(rows))
    return str(path)


def _rows(items, scores: list[list[float | None]], errors: dict | None = None, model: str = "m") -> list[dict]:
    out = []
    for iid, row in zip(items.column("item_id").to_pylist(), scores):
        for k, s in enumerate(row):
            err = (errors or {}).get((iid, k))
            out.append({"unit_key": "u", "model": model, "suite": "rewardmath", "subset": "x", "item_id": iid,
                        "candidate": k, "score": None if err else s, "error": err, "settings_hash": "h"})
    return out


def _synthetic_items(n_items: int, n_cand: int = 10, subsets: list[str] | None = None):
    return items_table(
        {"suite": "rewardmath", "subset": (subsets[i] if subsets else "all"), "item_id": str(i),
         "prompt": [{"role": "user", "content": f"p{i}"}], "candidates": [f"s{k}" for k in range(n_cand)],
         "correct": [0]}
        for i in range(n_items)
    )


# ---- loader ------------------------------------------------------------------------------------------------


def test_registered() -> None:
    assert get_suite_class("rewardmath") is RewardMATH


def test_load_real_directory_reads_only_the_direct_file(rm_dir) -> None:
    items = RewardMATH().load(str(rm_dir))
    raw = _direct_rows(rm_dir)
    assert items.num_rows == 2 and items.column("item_id").to_pylist() == ["0", "399"]
    for item in items.to_pylist():
        rows = [r for r in raw if str(r["problem_id"]) == item["item_id"]]
        chosen = [r for r in rows if r["solution_type"] == "chosen"]
        rejected = [r for r in rows if r["solution_type"] == "rejected"]
        assert item["correct"] == [0] and len(item["candidates"]) == 10
        assert item["candidates"] == ["\n".join(r["eval_solution"]) for r in chosen + rejected]
        assert item["prompt"] == [{"role": "user", "content": rows[0]["problem"]}]
        assert item["subset"] == rows[0]["subject"]
        meta = json.loads(item["meta"])
        assert meta["solution_reference"][0] == "human_to_GPT-4" and meta["answer"] == rows[0]["answer"]


def test_load_single_file_same_as_directory(rm_dir) -> None:
    assert RewardMATH().load(str(rm_dir / "RewardMATH_direct.json")).equals(RewardMATH().load(str(rm_dir)))


def test_chosen_first_even_when_not_first_in_data(tmp_path, rm_dir) -> None:
    rows = _direct_rows(rm_dir)[:10]
    rows = rows[3:] + rows[:3]  # the chosen row (index 0) now sits fourth
    item = RewardMATH().load(_write(tmp_path, rows)).to_pylist()[0]
    assert item["candidates"][0] == "\n".join(_direct_rows(rm_dir)[0]["eval_solution"])
    assert json.loads(item["meta"])["solution_reference"][0] == "human_to_GPT-4"


def test_hub_path_uses_read_hub(monkeypatch, rm_dir) -> None:
    from rmorch.suites.files import Record

    calls = []

    def fake_hub(hub_id, split, name=None):
        calls.append((hub_id, split))
        for i, r in enumerate(_direct_rows(rm_dir), 1):
            yield Record(f"hub:{hub_id}:{split}", i, r)

    monkeypatch.setattr("rmorch.suites.base.read_hub", fake_hub)
    items = RewardMATH().load()
    assert calls == [("RewardMATH/RewardMATH", "test")] and items.num_rows == 2


@pytest.mark.parametrize(
    "mutate, field, row",
    [
        (lambda rows: rows[4].update(solution_type="chosen"), "solution_type", 5),
        (lambda rows: rows[0].update(solution_type="best"), "solution_type", 1),
        (lambda rows: rows[2].pop("problem_id"), "problem_id", 3),
        (lambda rows: rows[6].update(eval_solution=[1, 2]), "eval_solution", 7),
        (lambda rows: rows[6].update(eval_solution=[]), "eval_solution", 7),
        (lambda rows: rows[7].update(problem="something else"), "problem", 8),
        (lambda rows: rows[1].update(problem=None), "problem", 2),
    ],
)
def test_bad_rows_name_file_row_field(tmp_path, rm_dir, mutate, field, row) -> None:
    rows = _direct_rows(rm_dir)
    mutate(rows)
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as e:
        RewardMATH().load(path)
    assert e.value.file == path and e.value.field == field and e.value.row == row
    assert path in str(e.value)


def test_missing_chosen_is_an_error(tmp_path, rm_dir) -> None:
    rows = [r for r in _direct_rows(rm_dir) if r["solution_type"] != "chosen" or r["problem_id"] != 0]
    with pytest.raises(DataError, match="0 'chosen'") as e:
        RewardMATH().load(_write(tmp_path, rows))
    assert e.value.field == "solution_type"


# ---- metric: reference values from the published per-solution scores ---------------------------------------


@pytest.mark.parametrize("name, hits", [("ArmoRM", 99), ("oasst-rm", 34)])
def test_reference_values_from_published_scores(rm_dir, name, hits) -> None:
    data = json.loads((rm_dir / "results" / f"{name}_reward.json").read_text())
    assert len(data) == 483
    scores = []
    for d in data:
        refs, s = eval_list(d["solution_reference"]), eval_list(d["score"])
        assert refs[0] == "human_to_GPT-4" and len(s) == 10
        scores.append([float(x) for x in s])
    items = _synthetic_items(len(scores))
    result = RewardMATH().score(items, results_table(_rows(items, scores)))
    assert result.extra["n_correct"] == hits
    assert result.score == pytest.approx(hits / 483, abs=1e-12)
    assert round(100 * result.score, 2) == {"ArmoRM": 20.50, "oasst-rm": 7.04}[name]
    assert result.n_items == 483 and result.n_errors == 0 and result.judge is None


def eval_list(value) -> list:
    """The published files hold the lists as Python-literal strings."""
    import ast

    return value if isinstance(value, list) else ast.literal_eval(value)


# ---- metric: hand-computed cases ---------------------------------------------------------------------------


def test_strict_top_credit_cases() -> None:
    assert strict_top_credit([2.0, 1.0, 1.9]) == 1.0
    assert strict_top_credit([2.0, 2.0, 1.0]) == 0.0  # a tie at the top is wrong
    assert strict_top_credit([1.0, 2.0, 0.0]) == 0.0
    assert strict_top_credit([math.nan, 1.0, 0.0]) == 0.0
    assert strict_top_credit([5.0, math.nan, 0.0]) == 0.0  # an error anywhere is wrong
    assert reciprocal_rank([3.0, 1.0, 2.0]) == 1.0
    assert reciprocal_rank([2.0, 2.0, 3.0]) == pytest.approx(1 / 3)  # ties ranked pessimistically
    assert reciprocal_rank([math.nan, 1.0]) == 0.0


def test_score_hand_computed_with_ties_errors_and_subsets() -> None:
    items = _synthetic_items(5, n_cand=4, subsets=["Algebra", "Algebra", "Geometry", "Geometry", "Geometry"])
    scores = [
        [4.0, 1.0, 2.0, 3.0],  # correct, MRR 1
        [3.0, 3.0, 1.0, 0.0],  # tie at the top: wrong, MRR 1/2
        [1.0, 2.0, 3.0, 4.0],  # wrong, MRR 1/4
        [9.0, 1.0, 1.0, 1.0],  # errored candidate 2: wrong, MRR 0
        [9.0, 1.0, 1.0, 1.0],  # candidate 3 missing: wrong, MRR 0
    ]
    rows = _rows(items, scores, errors={("3", 2): "CUDA OOM"})
    rows = [r for r in rows if not (r["item_id"] == "4" and r["candidate"] == 3)]
    result = RewardMATH().score(items, results_table(rows))
    assert result.score == pytest.approx(1 / 5)
    assert result.subsets == pytest.approx({"Algebra": 0.5, "Geometry": 0.0})
    assert result.n_errors == 2 and result.n_items == 5
    assert result.extra["mrr"] == pytest.approx((1 + 0.5 + 0.25 + 0 + 0) / 5)


def test_judge_ratings_use_the_strict_rule() -> None:
    items = _synthetic_items(3, n_cand=3)
    ratings = [[9, 5, 5], [9, 9, 1], [None, 1, 1]]  # strict win; tie (wrong, not 1/2); unparsed (-1): wrong
    rows = []
    for iid, row in zip(["0", "1", "2"], ratings):
        for k, r in enumerate(row):
            rows.append({"unit_key": "u", "model": "j", "suite": "rewardmath", "subset": "all", "item_id": iid,
                         "candidate": k, "score": r, "parsed": r is not None, "settings_hash": "h"})
    result = RewardMATH().score(items, results_table(rows))
    assert result.score == pytest.approx(1 / 3)
    assert result.judge is not None and result.judge["parse_failure_rate"] == pytest.approx(1 / 9)
    assert "mrr" not in result.extra
