"""Long-RewardBench (rmorch.suites.longrewardbench): loader on hub-schema fixtures, the official ranking credit and results
table against hand-computed cases, and one sweep through the real pipeline: the `length` baseline checked against an
independent computation, and a tiny classifier with a small max_length whose rows are flagged truncated."""

from __future__ import annotations

import json

import pytest

import rmorch.suites.longrewardbench  # noqa: F401  (registers the suite)
from rmorch.core.errors import DataError
from rmorch.core.schema import items_table, results_table
from rmorch.suites.longrewardbench import LongRewardBench, long_aggregate, ranking_credit
from tests.conftest import FIXTURES

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_longrewardbench.py
DATA = FIXTURES / "long-rewardbench"
TASK_FILES = ("Cite", "LongQA", "Math")


def _rows():
    return [(t, json.loads(line)) for t in TASK_FILES for line in (DATA / f"{t}.jsonl").read_text().splitlines()]


def test_loader_maps_pairs_and_best_of_n():
    items = LongRewardBench().load(str(DATA))
    raw = _rows()
    assert items.num_rows == len(raw) == 9
    by_id = {r["item_id"]: r for r in items.to_pylist()}
    for task, row in raw:
        it = by_id[f"{task}/{row['tasktype']}/{row['id']}"]
        assert it["subset"] == f"{row['tasktype']}/{task}"
        assert it["prompt"] == row["prompt_template"] and it["context"] is None and it["correct"] == [0]
        meta = json.loads(it["meta"])
        assert (meta["task"], meta["tasktype"], meta["subtype"], meta["ctx_length"]) == (
            task, row["tasktype"], row["subtype"], row["ctx_length_for_length"])
        if row["tasktype"] == "PairWise":
            assert it["candidates"] == [row["chosen"], row["rejected"]] and it["gold"] is None
        else:
            assert it["candidates"] == row["candidates"] and it["gold"] == row["candidates_score"]


def test_bad_row_names_file_row_and_field(tmp_path):
    lines = (DATA / "LongQA.jsonl").read_text().splitlines()
    bad = json.loads(lines[2])
    bad["candidates"] = ["fine", 3, "x"]
    f = tmp_path / "LongQA.jsonl"
    f.write_text("\n".join([lines[0], lines[1], json.dumps(bad)]) + "\n")
    with pytest.raises(DataError) as e:
        LongRewardBench().load(str(f))
    assert (e.value.file, e.value.row, e.value.field) == (str(f), 3, "candidates")
    assert "row 3" in str(e.value) and "'candidates'" in str(e.value)

    g = tmp_path / "Math.jsonl"
    g.write_text(json.dumps({**json.loads(lines[0]), "tasktype": "Pointwise"}) + "\n")
    with pytest.raises(DataError) as e:
        LongRewardBench().load(str(g))
    assert (e.value.row, e.value.field) == (1, "tasktype")


def test_ranking_credit_by_hand():
    assert ranking_credit([2.0, 1.0]) == 1.0
    assert ranking_credit([1.0, 2.0]) == 0.0
    assert ranking_credit([1.0, 1.0]) == 0.0                      # tie: wrong
    assert ranking_credit([3.0, 2.0, 1.0, 0.0]) == 1.0
    assert ranking_credit([3.0, 1.0, 2.0, 0.0]) == 0.5            # first and last placed right
    assert ranking_credit([0.0, 3.0, 2.0, 1.0]) == 0.0            # every rank shifted
    assert ranking_credit([5.0, 1.0, 1.0]) == pytest.approx(1 / 3)  # the tied pair is misplaced
    assert ranking_credit([5.0, float("nan"), 1.0]) == 0.0


def test_results_table_by_hand():
    tasks = ["Cite", "Cite", "Math", "Math", "Cite", "Math"]
    types = ["PairWise", "PairWise", "PairWise", "BestOfN", "BestOfN", "BestOfN"]
    subtypes = ["same", "diff", "same", "3", "4", "3"]
    ctx = ["4k", "8k", "4k", "4k", "8k", "16k"]
    credits = [1.0, 0.0, 1.0, 1 / 3, 0.5, 1.0]
    t = long_aggregate(tasks, types, subtypes, ctx, credits)
    assert t["Cite"] == 0.5 and t["Math"] == 1.0 and "Code" not in t
    assert t["Same."] == 1.0 and t["Diff."] == 0.0 and t["PairWise Avg."] == pytest.approx(2 / 3)
    assert t["Rank3"] == pytest.approx((1 / 3 + 1) / 2) and t["Rank4"] == 0.5 and "Rank2" not in t
    assert t["Rank Avg."] == pytest.approx((1 / 3 + 0.5 + 1) / 3)
    assert t["4k"] == 1.0 and t["8k"] == 0.0 and "16k" not in t  # length columns count pairs only
    assert t["AVG."] == pytest.approx(sum(credits) / 6)


def test_score_from_result_rows():
    items = items_table([
        {"suite": "long-rewardbench", "subset": "PairWise/Cite", "item_id": "p", "prompt": [{"role": "user",
         "content": "q"}], "candidates": ["a", "b"], "correct": [0],
         "meta": {"task": "Cite", "tasktype": "PairWise", "subtype": "same", "ctx_length": "4k"}},
        {"suite": "long-rewardbench", "subset": "BestOfN/Cite", "item_id": "b", "prompt": [{"role": "user",
         "content": "q"}], "candidates": ["a", "b", "c"], "correct": [0],
         "meta": {"task": "Cite", "tasktype": "BestOfN", "subtype": "3", "ctx_length": "4k"}},
    ])
    rows = [(iid, c, s) for iid, c, s in [("p", 0, 2.0), ("p", 1, 1.0), ("b", 0, 1.0), ("b", 1, 3.0), ("b", 2, 0.0)]]
    res = results_table([{"unit_key": "u", "model": "m", "suite": "long-rewardbench", "subset": "x", "item_id": i,
                          "candidate": c, "score": s, "settings_hash": "h"} for i, c, s in rows])
    s = LongRewardBench().score(items, res)
    assert s.subsets == {"PairWise/Cite": 1.0, "BestOfN/Cite": pytest.approx(1 / 3)}
    assert s.sections == {"PairWise Avg.": 1.0, "Rank Avg.": pytest.approx(1 / 3)}
    assert s.score == pytest.approx((1 + 1 / 3) / 2) and s.extra["official_table"]["Rank3"] == pytest.approx(1 / 3)
