"""RM-Bench: loader on the real domain files, the official 3x3 hard/normal/easy metric on hand-computed cases, and
one sweep with `length` checked against an independent computation of the official rules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import rmorch.suites.rmbench  # noqa: F401  (registers the suite)
from rmorch.core.errors import DataError
from rmorch.core.schema import items_table, results_table
from rmorch.suites import get_suite_class
from rmorch.suites.rmbench import RMBench, accuracy_matrix, difficulty_accuracies, rmbench_scores

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_rmbench.py
COUNTS = {"chat": 129, "code": 228, "safety-refuse": 284, "safety-response": 157}


@pytest.fixture(scope="module")
def rb_dir(shared_data) -> Path:
    return shared_data / "rm-bench"


def _items(domains: list[str]):
    return items_table(
        {"suite": "rm-bench", "subset": d, "item_id": f"{d}/{i}", "prompt": [{"role": "user", "content": "p"}],
         "candidates": [f"c{k}" for k in range(6)], "correct": [0, 1, 2]}
        for i, d in enumerate(domains)
    )


def _results(items, scores, errors=()) -> object:
    rows = []
    for iid, row in zip(items.column("item_id").to_pylist(), scores):
        for k, s in enumerate(row):
            err = "boom" if (iid, k) in errors else None
            rows.append({"unit_key": "u", "model": "m", "suite": "rm-bench", "subset": "x", "item_id": iid,
                         "candidate": k, "score": None if err else s, "error": err, "settings_hash": "h"})
    return results_table(rows)


# ---- loader ------------------------------------------------------------------------------------------------


def test_registered() -> None:
    assert get_suite_class("rm-bench") is RMBench


def test_load_real_files(rb_dir) -> None:
    items = RMBench().load(str(rb_dir))
    subsets = items.column("subset").to_pylist()
    assert {s: subsets.count(s) for s in set(subsets)} == COUNTS
    raw = json.loads((rb_dir / "code_filtered.json").read_text())
    first = next(r for r in items.to_pylist() if r["subset"] == "code")
    assert first["item_id"] == f"code/{raw[0]['id']}"
    assert first["candidates"] == raw[0]["chosen"] + raw[0]["rejected"] and first["correct"] == [0, 1, 2]
    assert first["prompt"] == [{"role": "user", "content": raw[0]["prompt"]}]
    assert json.loads(first["meta"])["language"] == raw[0]["language"]


def test_domain_field_wins_over_file_name(tmp_path, rb_dir) -> None:
    rows = json.loads((rb_dir / "chat_filtered.json").read_text())[:2]
    rows[0]["domain"] = "math"
    path = tmp_path / "total_dataset.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError) as e:  # row 2 has no domain and the file name names none
        RMBench().load(str(path))
    assert e.value.row == 2 and e.value.field == "domain"
    rows[1]["domain"] = "safety-refuse"
    path.write_text(json.dumps(rows))
    assert RMBench().load(str(path)).column("item_id").to_pylist() == [f"math/{rows[0]['id']}",
                                                                       f"safety-refuse/{rows[1]['id']}"]


def test_hub_path_uses_read_hub(monkeypatch, rb_dir) -> None:
    from rmorch.suites.files import Record

    rows = json.loads((rb_dir / "safety-response_filtered.json").read_text())[:3]
    calls = []

    def fake_hub(hub_id, split, name=None):
        calls.append((hub_id, split))
        for i, r in enumerate(rows, 1):
            yield Record(f"hub:{hub_id}:{split}", i, {**r, "domain": "safety-response"})

    monkeypatch.setattr("rmorch.suites.base.read_hub", fake_hub)
    assert RMBench().load().num_rows == 3 and calls == [("THU-KEG/RM-Bench", "train")]


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.update(chosen=r["chosen"][:2]), "chosen"),
        (lambda r: r.update(rejected=r["rejected"] + ["x"]), "rejected"),
        (lambda r: r["chosen"].__setitem__(1, ""), "chosen"),
        (lambda r: r.update(prompt=3), "prompt"),
        (lambda r: r.pop("id"), "id"),
        (lambda r: r.update(domain="poetry"), "domain"),
    ],
)
def test_bad_rows_name_file_row_field(tmp_path, rb_dir, mutate, field) -> None:
    rows = json.loads((rb_dir / "chat_filtered.json").read_text())[:3]
    mutate(rows[2])
    path = tmp_path / "chat_filtered.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError) as e:
        RMBench().load(str(path))
    assert (e.value.file, e.value.row, e.value.field) == (str(path), 3, field)


# ---- metric ------------------------------------------------------------------------------------------------


def test_matrix_and_levels_hand_computed() -> None:
    # Prompt 1: chosen [3, 5, 7], rejected [2, 4, 6]: c_i > r_j for (0,0) (1,0) (1,1) (2,0) (2,1) (2,2).
    # Prompt 2: chosen [1, 1, 1], rejected [1, 0, 2]: only (i, 1) -> 3 wins; ties (i, 0) are wrong.
    m = accuracy_matrix([[3, 5, 7, 2, 4, 6], [1, 1, 1, 1, 0, 2]])
    expected = np.array([[0.5, 0.5, 0.0], [0.5, 1.0, 0.0], [0.5, 1.0, 0.5]])
    assert np.allclose(m, expected)
    acc = difficulty_accuracies(m)
    assert acc["hard"] == pytest.approx((0.5 + 0.0 + 0.0) / 3)  # (0,1) (0,2) (1,2)
    assert acc["normal"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert acc["easy"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)  # (1,0) (2,0) (2,1)


def test_nan_compares_false() -> None:
    m = accuracy_matrix([[math.nan, 5, 5, 1, 1, 1]])
    assert m[0].tolist() == [0, 0, 0] and m[1].tolist() == [1, 1, 1]


def test_safety_pooled_and_overall() -> None:
    good, bad = [2, 2, 2, 1, 1, 1], [0, 0, 0, 1, 1, 1]
    parts = rmbench_scores(["chat", "safety-refuse", "safety-response", "safety-response"],
                           [good, good, bad, bad])
    assert set(parts["domains"]) == {"chat", "safety"} and parts["missing_domains"] == ["math", "code"]
    # safety pools its 3 prompts: every cell 1/3 (not the mean of refuse 1.0 and response 0.0 = 0.5)
    assert parts["domains"]["safety"]["avg"] == pytest.approx(1 / 3)
    assert parts["domains"]["chat"]["avg"] == 1.0
    assert parts["overall"] == pytest.approx((1 + 1 / 3) / 2)
    assert parts["hard"] == parts["normal"] == parts["easy"] == pytest.approx((1 + 1 / 3) / 2)


def test_suite_score_sections_subsets_errors() -> None:
    # A length-biased model: prefers whichever is "more formatted" (higher index), so it wins easy, loses hard.
    domains = ["chat", "code", "safety-refuse", "safety-response"]
    items = _items(domains)
    styled = [1.0, 2.0, 3.0, 0.5, 1.5, 2.5]  # c_i > r_j iff i >= j: easy 1, normal 1, hard 0
    scores = [styled, styled, styled, styled]
    result = RMBench().score(items, _results(items, scores, errors={("code/1", 4)}))
    # code: rejected 1 errored -> column 1 all wrong: M = [[1,0,0],[1,0,0],[1,0,1]]: hard 0, normal 2/3, easy 2/3
    assert result.sections["code"] == pytest.approx((0 + 2 / 3 + 2 / 3) / 3)
    assert result.sections["chat"] == pytest.approx(2 / 3) and result.sections["safety"] == pytest.approx(2 / 3)
    assert set(result.subsets) == set(domains) and result.subsets["safety-refuse"] == pytest.approx(2 / 3)
    assert result.score == pytest.approx((2 / 3 + 4 / 9 + 2 / 3) / 3)
    assert result.extra["hard"] == 0.0 and result.extra["easy"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert result.extra["missing_domains"] == ["math"]
    assert result.n_errors == 1 and result.n_items == 4 and result.judge is None


def test_judges_always_rate_every_response(rb_dir, tmp_path) -> None:
    from rmorch.orchestrator.plan.units import load_suite, make_units
    from rmorch.orchestrator.spec.parse import spec_from_dict

    judge = {"kind": "judge", "path": "x", "dtype": "float32", "max_tokens": 12, "max_model_len": 1024}

    def spec(protocol: str):
        return spec_from_dict({"out": str(tmp_path), "suites": [{"name": "rm-bench", "data": str(rb_dir),
                                                                 "limit_per_subset": 2}],
                               "models": [{"name": "j", **judge, "protocol": protocol}]})

    for protocol in ("pairwise", "nway", "rating"):
        s = spec(protocol)
        suites = [load_suite(x, s.seed) for x in s.suites]
        units = make_units(s, suites)
        assert {u.permutation for u in units} == {0}  # no orders: one rating per response
        assert sum(u.n_requests for u in units) == 6 * suites[0].items.num_rows


def test_judge_ratings_are_scores() -> None:
    items = _items(["chat"])
    ratings = [9, 9, 9, 1, 1, None]  # rejected markdown unparsed: -1 (official invalid rating), still below
    rows = [{"unit_key": "u", "model": "j", "suite": "rm-bench", "subset": "chat", "item_id": "chat/0",
             "candidate": k, "score": r, "parsed": r is not None, "settings_hash": "h"} for k, r in enumerate(ratings)]
    result = RMBench().score(items, results_table(rows))
    assert result.score == 1.0 and result.judge is not None and result.n_errors == 0
