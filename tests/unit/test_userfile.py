"""`kind: file`: the user's own data in each column-mapping form, spec and data errors, and a random pairwise file
(response_a/response_b/label form) swept with the length baseline, checked against accuracy computed here straight
from the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rmorch.suites.userfile  # noqa: F401  (registers the `file` kind)
from rmorch.core.errors import DataError, SpecError
from rmorch.core.schema import results_table
from rmorch.orchestrator.plan.units import load_suite
from rmorch.orchestrator.spec.parse import spec_from_dict

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_userfile.py
FIXTURE = Path(__file__).parents[1] / "fixtures" / "userfile"


def suite_spec(entry: dict):
    return spec_from_dict({"suites": [entry], "models": ["length"]}).suites[0]


def load(entry: dict):
    return load_suite(suite_spec(entry), seed=0)


def length_results(items: pa.Table) -> pa.Table:
    rows = []
    for it in items.select(["suite", "subset", "item_id", "candidates"]).to_pylist():
        for k, c in enumerate(it["candidates"]):
            rows.append({"unit_key": "u", "model": "length", "suite": it["suite"], "subset": it["subset"],
                         "item_id": it["item_id"], "candidate": k, "score": float(len(c)), "settings_hash": "h"})
    return results_table(rows)


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return str(path)


# ---- the three forms ---------------------------------------------------------------------------------------


def test_chosen_rejected_form_with_subset_and_id() -> None:
    ls = load({"name": "my-prefs", "kind": "file", "data": str(FIXTURE / "chosen_rejected.jsonl"),
               "columns": {"prompt": "question", "chosen": "good", "rejected": "bad", "subset": "topic",
                           "id": "qid"}})
    items = ls.items
    assert ls.name == "my-prefs" and ls.suite.name == "my-prefs"
    assert set(items.column("suite").to_pylist()) == {"my-prefs"}
    rows = [json.loads(x) for x in (FIXTURE / "chosen_rejected.jsonl").read_text().splitlines()]
    assert items.column("item_id").to_pylist() == [str(r["qid"]) for r in rows]
    assert items.column("subset").to_pylist() == [r["topic"] for r in rows]
    assert all(c == [0] for c in items.column("correct").to_pylist())
    s = ls.suite.score(items, length_results(items))
    hits = [len(r["good"]) > len(r["bad"]) for r in rows]
    assert s.score == pytest.approx(sum(hits) / len(hits))
    for topic in {r["topic"] for r in rows}:
        mine = [h for h, r in zip(hits, rows) if r["topic"] == topic]
        assert s.subsets[topic] == pytest.approx(sum(mine) / len(mine))
    assert s.extra["overall"] == "mean over items"


def test_label_form_csv_with_numeric_a_wins_and_default_row_ids() -> None:
    """csv labels are text ("1"/"2"), the spec value a number: they still match. ids default to the row number."""
    ls = load({"name": "ab", "kind": "file", "data": str(FIXTURE / "ab.csv"), "a_wins": 1,
               "columns": {"prompt": "prompt", "response_a": "a", "response_b": "b", "label": "winner"}})
    with open(FIXTURE / "ab.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert ls.items.column("item_id").to_pylist() == [str(i + 2) for i in range(len(rows))]  # csv line numbers
    assert ls.items.column("correct").to_pylist() == [[0] if r["winner"] == "1" else [1] for r in rows]
    assert set(ls.items.column("subset").to_pylist()) == {"all"}
    assert ls.items.column("candidates").to_pylist()[0] == [rows[0]["a"], rows[0]["b"]]


def test_nway_form_parquet_with_index_and_index_lists(tmp_path: Path) -> None:
    rows = [
        {"q": "2+2?", "answers": ["4", "five", "22"], "best": 0},
        {"q": "a color", "answers": ["table", "blue!", "red"], "best": [1, 2]},
        {"q": "pick", "answers": ["b", "cc", "ddd", "aaaa"], "best": [3]},
    ]
    path = tmp_path / "pools.parquet"
    pq.write_table(pa.Table.from_pylist([{**r, "best": r["best"] if isinstance(r["best"], list) else [r["best"]]}
                                         for r in rows]), path)
    ls = load({"name": "pools", "kind": "file", "data": str(path),
               "columns": {"prompt": "q", "candidates": "answers", "correct": "best"}})
    assert ls.items.column("correct").to_pylist() == [[0], [1, 2], [3]]
    s = ls.suite.score(ls.items, length_results(ls.items))
    # length: item 1: "five" (4) > "4" -> wrong; item 2: best correct "blue!" (5) > "table" (5)? tie -> wrong;
    # item 3: "aaaa" longest and correct -> right.
    assert s.score == pytest.approx(1 / 3)
    # a plain integer index in jsonl works too
    p2 = write_jsonl(tmp_path / "pools.jsonl", rows)
    ls2 = load({"name": "pools2", "kind": "file", "data": p2,
                "columns": {"prompt": "q", "candidates": "answers", "correct": "best"}})
    assert ls2.items.column("correct").to_pylist() == [[0], [1, 2], [3]]


def test_prompt_as_message_list(tmp_path: Path) -> None:
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    p = write_jsonl(tmp_path / "m.jsonl", [{"p": msgs, "c": "hello", "r": "go away"}])
    ls = load({"name": "m", "kind": "file", "data": p, "columns": {"prompt": "p", "chosen": "c", "rejected": "r"}})
    assert ls.items.column("prompt").to_pylist()[0] == msgs


def test_judge_verdicts_on_a_file_suite() -> None:
    ls = load({"name": "ab-j", "kind": "file", "data": str(FIXTURE / "ab.csv"), "a_wins": "1",
               "columns": {"prompt": "prompt", "response_a": "a", "response_b": "b", "label": "winner"}})
    rows = [{"unit_key": "u", "model": "j", "suite": it["suite"], "subset": it["subset"], "item_id": it["item_id"],
             "order": [0, 1], "permutation": 0, "verdict": 0, "parsed": True, "settings_hash": "h"}
            for it in ls.items.to_pylist()]
    s = ls.suite.score(ls.items, results_table(rows))  # always picks response_a
    a_wins = [c == [0] for c in ls.items.column("correct").to_pylist()]
    assert s.score == pytest.approx(sum(a_wins) / len(a_wins))
    assert s.judge is not None


def test_spec_round_trip_keeps_kind_and_columns() -> None:
    doc = {"suites": [{"name": "mine", "kind": "file", "data": "x.jsonl", "a_wins": "A",
                       "columns": {"prompt": "p", "response_a": "a", "response_b": "b", "label": "l"}}],
           "models": ["length"]}
    spec = spec_from_dict(doc)
    again = spec_from_dict(spec.to_dict())
    assert again.suites == spec.suites
    assert spec.to_dict()["suites"][0]["kind"] == "file"


# ---- bad input ------------------------------------------------------------------------------------------------


def spec_error(entry: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        suite_spec(entry)
    return info.value


def test_unknown_column_key_is_a_spec_error() -> None:
    e = spec_error({"name": "x", "kind": "file", "data": "d.jsonl",
                    "columns": {"prompt": "p", "chosen": "c", "rejected": "r", "winner": "w"}})
    assert e.key == "suites[0].columns.winner" and "unknown column key" in str(e)


def test_incomplete_or_mixed_mapping_is_a_spec_error() -> None:
    e = spec_error({"name": "x", "kind": "file", "data": "d.jsonl", "columns": {"prompt": "p", "chosen": "c"}})
    assert e.key == "suites[0].columns" and "missing ['rejected']" in str(e)
    e = spec_error({"name": "x", "kind": "file", "data": "d.jsonl",
                    "columns": {"prompt": "p", "chosen": "c", "rejected": "r", "label": "l"}})
    assert "['label'] do not belong" in str(e)


def test_label_form_needs_a_wins() -> None:
    e = spec_error({"name": "x", "kind": "file", "data": "d.jsonl",
                    "columns": {"prompt": "p", "response_a": "a", "response_b": "b", "label": "l"}})
    assert e.key == "suites[0].a_wins"
    e = spec_error({"name": "x", "kind": "file", "data": "d.jsonl", "a_wins": "A",
                    "columns": {"prompt": "p", "chosen": "c", "rejected": "r"}})
    assert e.key == "suites[0].a_wins"


def test_unknown_kind_and_name_clash() -> None:
    e = spec_error({"name": "x", "kind": "fiel", "data": "d.jsonl"})
    assert e.key == "suites[0].kind" and "did you mean 'file'" in str(e)
    e = spec_error({"name": "rewardbench", "kind": "file", "data": "d.jsonl",
                    "columns": {"prompt": "p", "chosen": "c", "rejected": "r"}})
    assert e.key == "suites[0].name" and "already the name of a suite" in str(e)


def test_missing_columns_or_data_at_load(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "good": "a", "bad": "b"}])
    with pytest.raises(SpecError, match="columns"):
        load({"name": "x", "kind": "file", "data": p})
    with pytest.raises(SpecError, match="data"):
        load({"name": "x2", "kind": "file", "columns": {"prompt": "q", "chosen": "good", "rejected": "bad"}})


def test_mapping_names_absent_columns_lists_the_files_columns(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "good": "a", "bad": "b"}])
    with pytest.raises(DataError) as info:
        load({"name": "x", "kind": "file", "data": p,
              "columns": {"prompt": "question", "chosen": "good", "rejected": "worse"}})
    msg = str(info.value)
    assert p in msg and "prompt: question" in msg and "rejected: worse" in msg and "its columns: q, good, bad" in msg


@pytest.mark.parametrize("label", [None, ""])
def test_missing_or_null_label_names_file_row_field(tmp_path: Path, label) -> None:
    rows = [{"p": "x", "a": "1", "b": "2", "l": "A"}, {"p": "y", "a": "1", "b": "2", "l": label}]
    p = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"d\.jsonl: row 2: field 'l': missing or null label"):
        load({"name": "x", "kind": "file", "data": p, "a_wins": "A",
              "columns": {"prompt": "p", "response_a": "a", "response_b": "b", "label": "l"}})
    rows[1].pop("l")
    p = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"row 2: field 'l': missing or null label"):
        load({"name": "x", "kind": "file", "data": p, "a_wins": "A",
              "columns": {"prompt": "p", "response_a": "a", "response_b": "b", "label": "l"}})


def test_bad_nway_rows(tmp_path: Path) -> None:
    cols = {"prompt": "q", "candidates": "c", "correct": "k"}
    for row, msg in [({"q": "x", "c": ["a", "b"], "k": 2}, "out of range"),
                     ({"q": "x", "c": ["a", "b"], "k": [0, 1]}, "at least one correct and one incorrect"),
                     ({"q": "x", "c": ["a"], "k": 0}, "at least 2"),
                     ({"q": "x", "c": ["a", "b"], "k": "first"}, "expected an index")]:
        p = write_jsonl(tmp_path / "d.jsonl", [row])
        with pytest.raises(DataError, match=msg):
            load({"name": "x", "kind": "file", "data": p, "columns": cols})


def test_duplicate_ids_and_empty_response(tmp_path: Path) -> None:
    cols = {"prompt": "q", "chosen": "c", "rejected": "r", "id": "i"}
    p = write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "c": "a", "r": "b", "i": 1}, {"q": "y", "c": "a", "r": "b", "i": 1}])
    with pytest.raises(DataError, match="duplicate item key '1'"):
        load({"name": "x", "kind": "file", "data": p, "columns": cols})
    p = write_jsonl(tmp_path / "d.jsonl", [{"q": "x", "c": " ", "r": "b", "i": 1}])
    with pytest.raises(DataError, match="row 1: field 'c': empty string"):
        load({"name": "x", "kind": "file", "data": p, "columns": cols})


def test_missing_file_and_bad_url_type(tmp_path: Path) -> None:
    cols = {"prompt": "q", "chosen": "c", "rejected": "r"}
    with pytest.raises(DataError, match="no such file"):
        load({"name": "x", "kind": "file", "data": str(tmp_path / "nope.jsonl"), "columns": cols})
    with pytest.raises(DataError, match="cannot tell the file type"):
        load({"name": "x", "kind": "file", "data": "https://example.invalid/data", "columns": cols})
