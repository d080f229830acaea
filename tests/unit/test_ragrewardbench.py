"""RAG-RewardBench (rmorch.suites.ragrewardbench): loader on hub-schema fixtures, the official metric against hand-computed
cases, and the `length` baseline through the real pipeline checked against an independent computation."""

from __future__ import annotations

import json

import pytest

import rmorch.suites.ragrewardbench  # noqa: F401  (registers the suite)
from rmorch.core.errors import DataError
from rmorch.core.schema import items_table, results_table
from rmorch.suites.ragrewardbench import RAGRewardBench, rag_aggregate, render_prompt
from tests.conftest import FIXTURES

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_ragrewardbench.py
DATA = FIXTURES / "rag-rewardbench"
SIX = ("helpful", "reason", "citation", "harmless", "abstain", "conflict")


def _rows():
    out = []
    for s in SIX:
        for line in (DATA / f"{s}.jsonl").read_text().splitlines():
            out.append((s, json.loads(line)))
    return out


def test_loader_maps_the_hub_schema():
    items = RAGRewardBench().load(str(DATA))
    raw = _rows()
    assert items.num_rows == len(raw) == 13
    assert set(items.column("subset").to_pylist()) == set(SIX)
    by_id = {r["item_id"]: r for r in items.to_pylist()}
    for scen, row in raw:
        it = by_id[f"{scen}/{row['id']}"]
        assert it["candidates"] == [row["chosen"], row["reject"]] and it["correct"] == [0]
        # documents and question are rendered into the one user turn, and kept in meta, not in context
        (msg,) = it["prompt"]
        assert msg["role"] == "user" and msg["content"].startswith(row["prompt"].rstrip())
        assert msg["content"].endswith(row["question"]) and it["context"] is None
        meta = json.loads(it["meta"])
        assert meta["references"] == row["prompt"] and meta["question"] == row["question"]
        assert meta["chosen_model"] == row["chosen_model"] and meta["reject_model"] == row["reject_model"]


def test_render_prompt_does_not_repeat_a_question_already_in_the_prompt():
    assert render_prompt("[1] doc\n\nQuestion: why?", "why?") == "[1] doc\n\nQuestion: why?"
    assert render_prompt("[1] doc\n", "why?") == "[1] doc\n\nQuestion: why?"


def test_scenario_from_subset_field_when_file_name_is_not_a_scenario(tmp_path):
    row = json.loads((DATA / "abstain.jsonl").read_text().splitlines()[0])
    (tmp_path / "all.jsonl").write_text(json.dumps({**row, "subset": "Conflict"}) + "\n")
    items = RAGRewardBench().load(str(tmp_path / "all.jsonl"))
    assert items.column("subset").to_pylist() == ["conflict"]


def test_bad_row_names_file_row_and_field(tmp_path):
    lines = (DATA / "reason.jsonl").read_text().splitlines()
    bad = json.loads(lines[1])
    del bad["question"]
    f = tmp_path / "reason.jsonl"
    f.write_text("\n".join([lines[0], json.dumps(bad), lines[2]]) + "\n")
    with pytest.raises(DataError) as e:
        RAGRewardBench().load(str(f))
    assert (e.value.file, e.value.row, e.value.field) == (str(f), 2, "question")
    assert str(f) in str(e.value) and "row 2" in str(e.value) and "'question'" in str(e.value)

    g = tmp_path / "other.jsonl"
    g.write_text(json.dumps({**json.loads(lines[0]), "subset": "hotpotqa"}) + "\n")
    with pytest.raises(DataError) as e:
        RAGRewardBench().load(str(g))
    assert (e.value.row, e.value.field) == (1, "subset")


def test_aggregate_is_item_weighted_by_hand():
    subsets = ["helpful"] * 4 + ["reason"] + ["citation"] * 5 + ["abstain"] * 2
    credits = [1, 1, 1, 0] + [0] + [1, 0, 0, 0, 0] + [1, 0]
    overall, sections, acc = rag_aggregate(subsets, [float(c) for c in credits])
    assert acc == {"helpful": 0.75, "reason": 0.0, "citation": 0.2, "abstain": 0.5}
    assert sections == {"Helpful": pytest.approx(4 / 10), "Harmless": 0.5}
    assert overall == pytest.approx(5 / 12)  # not the subset mean (0.3625) nor the section mean (0.45)


def _items():
    rows = []
    for k, (sub, cands) in enumerate([("reason", ["a", "b"]), ("reason", ["c", "d"]), ("conflict", ["e", "f"]),
                                      ("helpful", ["g", "h"])]):
        rows.append({"suite": "rag-rewardbench", "subset": sub, "item_id": f"{sub}/{k}",
                     "prompt": [{"role": "user", "content": "q"}], "candidates": cands, "correct": [0]})
    return items_table(rows)


def _res(iid, cand, score=None, error=None):
    return {"unit_key": "u", "model": "m", "suite": "rag-rewardbench", "subset": iid.split("/")[0], "item_id": iid,
            "candidate": cand, "score": score, "error": error, "settings_hash": "h"}


def test_score_strict_ties_errors_and_missing_are_wrong():
    res = results_table([
        _res("reason/0", 0, 2.0), _res("reason/0", 1, 1.0),      # right
        _res("reason/1", 0, 1.0), _res("reason/1", 1, 1.0),      # tie: wrong
        _res("conflict/2", 0, 5.0), _res("conflict/2", 1, error="boom"),  # error: wrong
        _res("helpful/3", 0, 3.0),                                # missing rejected: wrong
    ])
    s = RAGRewardBench().score(_items(), res)
    assert s.subsets == {"helpful": 0.0, "reason": 0.5, "conflict": 0.0}
    assert s.sections == {"Helpful": pytest.approx(1 / 3), "Harmless": 0.0}
    assert s.score == pytest.approx(0.25) and s.n_items == 4 and s.n_errors == 2 and s.judge is None


def test_judge_verdicts_are_credited():
    res = results_table([
        {**_res(f"{s}/{k}", None), "order": [0, 1], "permutation": 0, "verdict": v, "parsed": v is not None,
         "raw_output": "x"}
        for k, (s, v) in enumerate([("reason", 0), ("reason", 1), ("conflict", None), ("helpful", 0)])
    ])
    s = RAGRewardBench().score(_items(), res)
    assert s.subsets == {"helpful": 1.0, "reason": 0.5, "conflict": 0.5}
    assert s.score == pytest.approx(2.5 / 4) and s.judge is not None
