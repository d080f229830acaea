"""Long-RewardBench (rmorch.suites.longrewardbench): loader on hub-schema fixtures, the official ranking credit and results
table against hand-computed cases, and one sweep through the real pipeline: the `length` baseline checked against an
independent computation, and a tiny classifier with a small max_length whose rows are flagged truncated."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import rmorch.suites.longrewardbench  # noqa: F401  (registers the suite)
from rmorch.core.errors import DataError
from rmorch.core.schema import items_table, results_table
from rmorch.suites.longrewardbench import LongRewardBench, long_aggregate, ranking_credit
from tests.conftest import FIXTURES

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


def _independent_length(rows):
    """Official rule written again from Long-RM evaluator.py: rank by score (here: characters) descending; the item
    result is the share of candidates whose rank equals their gold index; AVG. = item mean."""
    per_item = {}
    for task, r in rows:
        cands = [r["chosen"], r["rejected"]] if r["tasktype"] == "PairWise" else r["candidates"]
        lengths = [len(c) for c in cands]
        assert len(set(lengths)) == len(lengths)  # no ties in the fixture
        order = sorted(range(len(cands)), key=lambda i: -lengths[i])  # order[rank] = candidate
        per_item[(task, r["tasktype"])] = per_item.get((task, r["tasktype"]), []) + [
            sum(order[k] == k for k in range(len(cands))) / len(cands)]
    return per_item


@pytest.mark.slow
def test_sweep_length_and_truncating_classifier(local_ray, tiny_classifier, tmp_path):
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({
        "out": str(tmp_path / "out"), "shard_size": 4,
        "suites": [{"name": "long-rewardbench", "data": str(DATA)}],
        "models": ["length", {"name": "tiny-rm", "kind": "classifier", "path": tiny_classifier, "dtype": "float32",
                              "max_length": 96, "truncation_side": "left", "batch_tokens": 1024}],
    })
    result = run_sweep(spec)
    assert result.ok
    board = {e["model"]: e for e in json.loads((tmp_path / "out" / "leaderboard.json").read_text())}

    per = _independent_length(_rows())
    every = [c for v in per.values() for c in v]
    length = board["length"]
    assert length["n_items"] == 9 and length["n_errors"] == 0
    assert length["subsets"] == pytest.approx({f"{tt}/{t}": sum(v) / len(v) for (t, tt), v in per.items()}, abs=1e-12)
    pw = [c for (t, tt), v in per.items() if tt == "PairWise" for c in v]
    bon = [c for (t, tt), v in per.items() if tt == "BestOfN" for c in v]
    assert length["sections"] == pytest.approx({"PairWise Avg.": sum(pw) / len(pw),
                                                "Rank Avg.": sum(bon) / len(bon)}, abs=1e-12)
    assert length["score"] == pytest.approx(sum(every) / len(every), abs=1e-12)

    # The classifier's truncation policy is recorded per row: every long-context input is cut to 96 tokens.
    tiny = board["tiny-rm"]
    assert tiny["n_items"] == 9 and tiny["n_errors"] == 0
    rows = pq.read_table(tmp_path / "out" / "results" / "tiny-rm").to_pylist()
    assert len(rows) == sum(2 if r["tasktype"] == "PairWise" else len(r["candidates"]) for _, r in _rows())
    assert all(r["truncated"] and r["n_tokens"] == 96 for r in rows)
    assert {(r["max_length"], r["truncation_side"]) for r in rows} == {(96, "left")}
