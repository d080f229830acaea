"""Fuzzing the data loaders: the raw file readers (suites/files.py), the user file suite (`kind: file`, every form
in jsonl / json / csv / parquet) and the local-file loaders of every built-in suite.

Properties:
- the readers turn any bytes into records or a DataError naming the file;
- a user file gives an items table holding exactly its rows, or a DataError naming the file, the first bad row and
  its field (an oracle here knows which rows are bad: each row is built valid, or broken in one known field);
- a built-in suite file with random rows changed (fields removed, given values of any type, huge or hostile
  text, extra fields) gives all of its items, or a DataError naming the file and a changed row; a file with a
  required field removed or made a non-string never loads;
- non-UTF-8 bytes, a cut-off file or an empty file is a DataError naming the file (and the line), never a
  traceback, and a loaded prefix of a cut file is exactly that prefix.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from rmorch.core.errors import DataError, UserError
from rmorch.suites import get_suite_class
from rmorch.suites.files import read_file
from rmorch.suites.userfile import FileOptions, FileSuite
from tests.conftest import FIXTURES, SHARED_DATA
from tests.fuzz_strategies import fuzz, hostile_text, json_value, non_blank_hostile_text, not_a_string

SURROGATE = "x\ud800y"  # only reachable through a JSON \u escape


def dump_json(value: Any) -> str:
    """JSON text, with \\u escapes where a lone surrogate cannot be written as UTF-8."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value)
    return text


def write_rows(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> list[int]:
    """Write rows in the format of the path's extension; return each row's row number as the readers count them."""
    ext = path.suffix
    if ext == ".jsonl":
        path.write_text("".join(dump_json(r) + "\n" for r in rows), encoding="utf-8")
        return list(range(1, len(rows) + 1))
    if ext == ".json":
        path.write_text(dump_json(rows), encoding="utf-8")
        return list(range(1, len(rows) + 1))
    if ext == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
        return list(range(1, len(rows) + 1))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns or list(rows[0]), lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    reader = csv.reader(io.StringIO(buf.getvalue(), newline=""))
    next(reader)
    lines = []
    for _ in reader:
        lines.append(reader.line_num)
    return lines


def assert_names_file(e: Exception, path: Path | str) -> None:
    assert isinstance(e, DataError) and isinstance(e, UserError), repr(e)
    assert str(path) in str(e), str(e)
    str(e).encode("utf-8")  # printable


# ---- the raw readers ----------------------------------------------------------------------------------------------

JSON_TEXT_PARTS = ['{', '}', '[', ']', '"', ':', ',', ' ', '\n', '\r', '"a"', '1', '-0', '1e999', '9' * 5000,
                   'NaN', 'true', 'null', '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '\\', '{"a": 1}', '\t',
                   '[' * 3000, '\ufeff', '\x00', '\u2028', 'a,b\n', '"x""y"', '"unterminated\n']


@fuzz(300)
@given(ext=st.sampled_from([".jsonl", ".json", ".csv", ".parquet"]),
       data=st.one_of(st.binary(max_size=200),
                      st.lists(st.sampled_from(JSON_TEXT_PARTS), max_size=30).map(lambda p: "".join(p).encode()),
                      st.text(max_size=100).map(lambda s: s.encode("utf-8"))))
@example(ext=".jsonl", data=b'{"a": ' + b"9" * 5000 + b"}\n")
@example(ext=".json", data=b"[" * 100_000)
@example(ext=".jsonl", data=b'{"a": "\\ud800"}\n')
@example(ext=".jsonl", data=b'{"\\udc80": 1}\n')
@example(ext=".csv", data=b'a,b\n"' + b"x" * 200_000 + b'",y\n')
@example(ext=".csv", data=b'a,b\nx,"unterminated')
@example(ext=".parquet", data=b"PAR1" + b"\x00" * 20 + b"PAR1")
def test_readers_turn_any_bytes_into_records_or_a_data_error(tmp_path_factory, ext: str, data: bytes) -> None:
    path = tmp_path_factory.mktemp("raw") / f"data{ext}"
    path.write_bytes(data)
    try:
        records = list(read_file(str(path)))
    except DataError as e:
        assert_names_file(e, path)
        return
    for rec in records:
        assert isinstance(rec.data, dict) and rec.source == str(path) and rec.row >= 1
        for k, v in rec.data.items():  # every text is valid unicode: it can be written as UTF-8 (arrow, hashes)
            json.dumps([k, v], ensure_ascii=False, default=str).encode("utf-8")


# ---- the user file suite: an oracle of which rows are bad --------------------------------------------------------

FORMS = {
    "cr": {"prompt": "question", "chosen": "good answer", "rejected": "bad"},
    "ab": {"prompt": "prömpt", "response_a": "A", "response_b": "B", "label": "winner"},
    "nway": {"prompt": "q", "candidates": "responses", "correct": "best"},
}
DELETE = object()


@dataclass
class Row:
    data: dict[str, Any]
    bad_field: str | None = None  # the column this row is broken in
    expected: dict[str, Any] = field(default_factory=dict)


def bad_values(key: str, ext: str, n: int) -> list[Any]:
    """Values of a mapped column that the loader must refuse."""
    if ext == ".csv":  # csv cells are text
        return {
            "candidates": ["x", "[]", '["only"]', '["a", ""]', '["a", 5]', "", "5"],
            "correct": ["x", "-1", str(n), "[]", "1.5", "true", "", "NaN", json.dumps(list(range(n)))],
        }.get(key, ["", " ", "\t\n"])
    if ext == ".parquet":  # one arrow type per column: only nulls and blanks
        return {"candidates": [None, [], ["only"], ["a", " "]], "correct": [None, -1, n]}.get(key, [None, "", "  "])
    common = [DELETE, None]
    return common + {
        "prompt": ["", " ", 5, [], [1], [{"role": "user"}], {"content": "x"}, [{"role": 1, "content": "x"}]],
        "label": ["", " ", float("nan")],
        "candidates": [5, "x", [], ["only"], ["a", ""], ["a", 5], {"a": "b"}],
        "correct": [-1, n, "x", True, [], list(range(n)), [None], 1.5, [0, "1"]],
        "subset": ["", " "],
        "id": ["", "\n"],
    }.get(key, ["", " ", 5, 1.5, True, ["x"], {"x": "y"}, SURROGATE])


@st.composite
def user_file(draw, ext: str) -> tuple[dict[str, str], Any, list[Row], list[str]]:
    form = draw(st.sampled_from(sorted(FORMS)))
    columns = dict(FORMS[form])
    if draw(st.booleans()):
        columns["subset"] = "sub set"
    if draw(st.booleans()):
        columns["id"] = "ID"
    a_wins = draw(st.sampled_from(["A", 1, "yes"])) if form == "ab" else None
    extra = draw(st.lists(st.sampled_from(["extra", "notes", "_default_id", "x y", "0"]), max_size=2, unique=True))
    n_rows = draw(st.integers(1, 6))
    text = non_blank_hostile_text if ext != ".parquet" else st.text(min_size=1).filter(str.strip)
    rows = []
    for i in range(n_rows):
        d: dict[str, Any] = {}
        exp: dict[str, Any] = {}
        prompt = draw(text)
        if ext in (".jsonl", ".json") and draw(st.booleans()):
            msgs = draw(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]),
                                                         "content": hostile_text}), min_size=1, max_size=3))
            d[columns["prompt"]], exp["prompt"] = msgs, msgs
        else:
            d[columns["prompt"]], exp["prompt"] = prompt, [{"role": "user", "content": prompt}]
        if form == "cr":
            c, r = draw(text), draw(text)
            d[columns["chosen"]], d[columns["rejected"]] = c, r
            exp["candidates"], exp["correct"] = [c, r], [0]
        elif form == "ab":
            a, b = draw(text), draw(text)
            a_first = draw(st.booleans())
            label = (a_wins if ext != ".csv" else str(a_wins)) if a_first else "other"
            d[columns["response_a"]], d[columns["response_b"]], d[columns["label"]] = a, b, label
            exp["candidates"], exp["correct"] = [a, b], [0 if a_first else 1]
        else:
            cands = draw(st.lists(text, min_size=2, max_size=5))
            n = len(cands)
            if ext == ".parquet":
                correct: Any = draw(st.integers(0, n - 1))
                exp["correct"] = [correct]
            else:
                good = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1, unique=True))
                correct = good[0] if len(good) == 1 and draw(st.booleans()) else good
                exp["correct"] = sorted(good)
            d[columns["candidates"]] = json.dumps(cands) if ext == ".csv" else cands
            d[columns["correct"]] = json.dumps(correct) if ext == ".csv" else correct
            exp["candidates"] = cands
        if "subset" in columns:
            d["sub set"] = exp["subset"] = draw(text)
        if "id" in columns:
            d["ID"] = exp["item_id"] = f"{i}:{draw(text)}"
        for name in extra:
            d[name] = draw(text if ext in (".csv", ".parquet") else json_value)
        row = Row(d, expected=exp)
        if draw(st.integers(0, 3)) == 0:  # one row in four is broken in one field
            key = draw(st.sampled_from(sorted(columns)))
            n = len(exp["candidates"])
            value = draw(st.sampled_from(bad_values(key, ext, n)))
            if not (key == "label" and value == "" and ext == ".parquet"):
                if value is DELETE:
                    del d[columns[key]]
                else:
                    d[columns[key]] = value
                row.bad_field = columns[key]
        rows.append(row)
    header = list(dict.fromkeys(k for r in rows for k in r.data)) if ext == ".csv" else []
    return columns, a_wins, rows, header


def load_user_file(path: Path, columns: dict[str, str], a_wins: Any):
    return FileSuite(FileOptions(columns=columns, a_wins=a_wins)).load(str(path))


def check_user_file(path: Path, columns, a_wins, rows: list[Row], header: list[str]) -> None:
    try:
        numbers = write_rows(path, [r.data for r in rows], header or None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        assume(False)  # parquet cannot hold this mix of types in one column
    bad = [(num, r) for num, r in zip(numbers, rows) if r.bad_field is not None]
    try:
        items = load_user_file(path, columns, a_wins)
    except DataError as e:
        assert_names_file(e, path)
        assert bad, f"a valid file was refused: {e}"
        num, row = bad[0]
        assert (e.row, e.field) == (num, row.bad_field), f"expected row {num} field {row.bad_field!r}: {e}"
        return
    assert not bad, f"row {bad[0][0]} (broken in {bad[0][1].bad_field!r}) was accepted"
    got = items.to_pylist()
    assert len(got) == len(rows)  # nothing dropped
    for num, row, item in zip(numbers, rows, got):
        exp = row.expected
        assert item["candidates"] == exp["candidates"]
        assert item["correct"] == exp["correct"]
        assert item["prompt"] == exp["prompt"]
        assert item["item_id"] == exp.get("item_id", str(num))
        assert item["subset"] == exp.get("subset", "all")


@fuzz(150)
@given(spec=user_file(".jsonl"))
def test_user_file_jsonl(tmp_path_factory, spec) -> None:
    check_user_file(tmp_path_factory.mktemp("uf") / "prefs.jsonl", *spec)


@fuzz(100)
@given(spec=user_file(".json"))
def test_user_file_json(tmp_path_factory, spec) -> None:
    check_user_file(tmp_path_factory.mktemp("uf") / "prefs.json", *spec)


@fuzz(150)
@given(spec=user_file(".csv"))
def test_user_file_csv(tmp_path_factory, spec) -> None:
    check_user_file(tmp_path_factory.mktemp("uf") / "prefs.csv", *spec)


@fuzz(80)
@given(spec=user_file(".parquet"))
def test_user_file_parquet(tmp_path_factory, spec) -> None:
    check_user_file(tmp_path_factory.mktemp("uf") / "prefs.parquet", *spec)


PARQUET_COLUMN_TYPES = {
    "int": (pa.int64(), 5), "float": (pa.float64(), 1.5), "bool": (pa.bool_(), True), "binary": (pa.binary(), b"\xff"),
    "list<int>": (pa.list_(pa.int64()), [1]), "struct": (pa.struct([("x", pa.string())]), {"x": "y"}),
    "null": (pa.null(), None), "map": (pa.map_(pa.string(), pa.string()), [("k", "v")]),
    "timestamp": (pa.timestamp("s"), 0), "decimal": (pa.decimal128(5, 2), None), "dictionary": (None, "x"),
}


@pytest.mark.parametrize("kind", sorted(PARQUET_COLUMN_TYPES))
@pytest.mark.parametrize("column", ["good", "meta"])
def test_parquet_column_of_another_type(tmp_path: Path, kind: str, column: str) -> None:
    """A parquet column of any arrow type where a string is expected (`good`), or an extra column of any type
    that a suite copies into its item meta (RewardBench's chosen_model): a DataError naming row 1 and the field,
    or (extra columns) items whose meta is JSON."""
    typ, value = PARQUET_COLUMN_TYPES[kind]
    if kind == "decimal":
        import decimal

        value = decimal.Decimal("1.25")
    n = 3
    data = {"question": ["q"] * n, "good": ["g"] * n, "bad": ["b"] * n}
    arr = pa.array([value] * n, type=typ) if typ is not None else pa.array([value] * n).dictionary_encode()
    if column == "good":
        table = pa.table({**data, "good": arr})
        pq.write_table(table, tmp_path / "p.parquet")
        mapping = {"prompt": "question", "chosen": "good", "rejected": "bad"}
        if kind == "dictionary":  # dictionary-encoded strings are strings
            assert load_user_file(tmp_path / "p.parquet", mapping, None).num_rows == n
            return
        with pytest.raises(DataError) as info:
            load_user_file(tmp_path / "p.parquet", mapping, None)
        assert (info.value.row, info.value.field) == (1, "good"), str(info.value)
        return
    rows = {"prompt": ["q"] * n, "chosen": ["c"] * n, "rejected": ["r"] * n, "subset": ["alpacaeval-easy"] * n,
            "id": list(range(n)), "chosen_model": arr}
    pq.write_table(pa.table(rows), tmp_path / "rb.parquet")
    items = get_suite_class("rewardbench")().load(str(tmp_path / "rb.parquet"))
    assert items.num_rows == n
    for meta in items.column("meta").to_pylist():
        json.loads(meta)


# ---- built-in suites: random changes to real rows ----------------------------------------------------------------


def _jsonl(path: Path, n: int | None = None) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:n] if n else rows


def _shortest_rewardbench_rows() -> list[dict[str, Any]]:
    by_subset: dict[str, dict[str, Any]] = {}
    for r in _jsonl(SHARED_DATA / "rewardbench" / "filtered.jsonl"):
        size = len(r["prompt"]) + len(r["chosen"]) + len(r["rejected"])
        if r["subset"] not in by_subset or size < by_subset[r["subset"]][0]:
            by_subset[r["subset"]] = (size, r)
    return [r for _, r in sorted(by_subset.values(), key=lambda x: x[0])[:6]]


@dataclass
class Case:
    suite: str
    file_name: str
    rows: Callable[[], list[dict[str, Any]]]
    required_str: tuple[str, ...] = ()  # removing it or making it a non-string must be refused
    required: tuple[str, ...] = ()  # removing it must be refused
    options: dict[str, Any] = field(default_factory=dict)
    n_items: Callable[[list[dict[str, Any]]], int] = len
    related: Callable[[list[dict[str, Any]], int], set[int]] = lambda rows, i: {i}  # rows an error at row i may name
    prior: bool = False  # the rows are RewardBench's prior sets (`prior_sets: FILE`) beside a valid main file
    probe_row: int = 1  # the row test_every_field_of_a_row_given_every_wrong_value changes


def _problem_rows(rows: list[dict[str, Any]], i: int) -> set[int]:
    pid = str(rows[i].get("problem_id"))
    return {k for k, r in enumerate(rows) if str(r.get("problem_id")) == pid}


def _rm_math_rows() -> list[dict[str, Any]]:
    with open(SHARED_DATA / "rewardmath" / "RewardMATH_direct.json", encoding="utf-8") as f:
        rows = json.load(f)
    return [dict(r, eval_solution=[s[:200] for s in r["eval_solution"]][:3]) for r in rows]


def _renumbered(*files: Path) -> Callable[[], list[dict[str, Any]]]:
    """Rows of several fixture files as one file's rows (their ids made unique)."""
    def rows() -> list[dict[str, Any]]:
        return [dict(r, id=i) for i, r in enumerate(r for f in files for r in _jsonl(f))]
    return rows


JUDGEBENCH_SPLIT = "gpt-4o-2024-05-13"  # the judgebench suite's default split


def _judgebench_rows() -> list[dict[str, Any]]:
    """One pair of each JudgeBench source kind (mmlu-pro-*, livebench-reasoning, livebench-math, livecodebench) and
    one more, texts cut short."""
    rows = _jsonl(SHARED_DATA / "judgebench" / f"dataset=judgebench,response_model={JUDGEBENCH_SPLIT}.jsonl")
    picked = {}
    for r in rows:
        picked.setdefault(r["source"] if not r["source"].startswith("mmlu-pro-") else "mmlu", r)
    out = [*picked.values(), next(r for r in rows if r not in picked.values())]
    return [dict(r, **{k: r[k][:300] for k in ("question", "response_A", "response_B")}) for r in out]


def _json_rows(path: Path, n: int) -> Callable[[], list[dict[str, Any]]]:
    def rows() -> list[dict[str, Any]]:
        with open(path, encoding="utf-8") as f:
            return json.load(f)[:n]
    return rows


CASES = {
    "rewardbench": Case("rewardbench", "rb.jsonl", _shortest_rewardbench_rows,
                        required_str=("prompt", "chosen", "rejected", "subset"), required=("id",)),
    "rewardbench-prior-sets": Case("rewardbench", "prior.jsonl", lambda: [
        {"subset": "anthropic_helpful", "prompt": [{"role": "user", "content": "Hi?"}], "chosen": "Hello.",
         "rejected": "Go away.", "id": 0},
        {"subset": "shp", "prompt": "Why is the sky blue?", "chosen": "Rayleigh scattering.", "rejected": "Paint.",
         "id": 1},
        {"subset": "summarize", "prompt": [{"role": "user", "content": "Sum up: a b c"}, {"role": "assistant",
         "content": "abc"}, {"role": "user", "content": "Shorter"}], "chosen": "abc", "rejected": "a", "id": 2}],
        required_str=("subset", "chosen", "rejected"), required=("prompt", "id"), prior=True,
        n_items=lambda rows: len(rows) + len(BASE_ROWS["rewardbench"])),
    "rewardbench2": Case("rewardbench2", "rb2.jsonl", lambda: _jsonl(FIXTURES / "rewardbench2" / "sample.jsonl", 8),
                         required_str=("subset", "id", "prompt"), required=("chosen", "rejected")),
    "m-rewardbench": Case("m-rewardbench", "deu_Latn.jsonl",
                          lambda: _jsonl(FIXTURES / "m-rewardbench" / "deu_Latn.jsonl", 6),
                          required_str=("prompt", "chosen", "rejected", "source"), required=("id",)),
    "rag-rewardbench": Case("rag-rewardbench", "helpful.jsonl",
                            _renumbered(FIXTURES / "rag-rewardbench" / "helpful.jsonl",
                                        FIXTURES / "rag-rewardbench" / "reason.jsonl"),
                            required_str=("prompt", "question", "chosen")),
    "long-rewardbench": Case("long-rewardbench", "LongQA.jsonl",
                             _renumbered(FIXTURES / "long-rewardbench" / "LongQA.jsonl",
                                         FIXTURES / "long-rewardbench" / "Cite.jsonl"),
                             required=("prompt_template",), probe_row=2),  # a best-of-N row
    "rm-bench": Case("rm-bench", "chat_filtered.json", _json_rows(SHARED_DATA / "rm-bench" / "chat_filtered.json", 4),
                     required_str=("prompt",), required=("chosen", "rejected", "id")),
    "rewardmath": Case("rewardmath", "RewardMATH_direct.json", _rm_math_rows,
                       required_str=("problem", "solution_type"), required=("eval_solution", "problem_id"),
                       n_items=lambda rows: len({str(r.get("problem_id")) for r in rows}), related=_problem_rows),
    "gsm8k-bon": Case("gsm8k-bon", "pool.jsonl",
                      lambda: _jsonl(SHARED_DATA / "gsm8k" / "example_model_solutions.jsonl", 5),
                      required_str=("question",)),
    "vl-rewardbench": Case("vl-rewardbench", "data.jsonl",
                           lambda: _jsonl(SHARED_DATA / "vl-rewardbench" / "data.jsonl", 6),
                           required_str=("query",), required=("response", "human_ranking", "id")),
    # the default split keeps the rows of its response model: a row given another one is left out, not an error
    "judgebench": Case("judgebench", "pairs.jsonl", _judgebench_rows,
                       required_str=("pair_id", "source", "label", "question", "response_A", "response_B",
                                     "response_model"),
                       n_items=lambda rows: sum(r.get("response_model") == JUDGEBENCH_SPLIT for r in rows)),
}
BASE_ROWS = {name: case.rows() for name, case in CASES.items()}

# Field names a change may touch besides the rows' own: the optional and internal names loaders look at.
OTHER_NAMES = ["id", "subset", "language", "domain", "task", "tasktype", "candidates", "candidates_score", "image",
               "image_path", "models", "num_correct", "total_completions", "answer", "level", "_prior", "_task",
               "_default_id", "reject", "rejected", "meta", "ground_truth", "extra"]
change_value = st.one_of(st.just(DELETE), json_value, hostile_text, not_a_string, st.just(SURROGATE),
                         st.lists(non_blank_hostile_text, min_size=1, max_size=4),
                         st.dictionaries(st.sampled_from(["solution", "is_correct", "bytes", "path"]),
                                         st.one_of(st.booleans(), hostile_text, st.just("/dev/null")), max_size=2))


@st.composite
def changed_rows(draw, name: str) -> tuple[list[dict[str, Any]], dict[int, list[tuple[str, Any]]]]:
    rows = copy.deepcopy(BASE_ROWS[name])
    names = sorted({k for r in rows for k in r} | set(OTHER_NAMES))
    changes: dict[int, list[tuple[str, Any]]] = {}
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        key = draw(st.one_of(st.sampled_from(names), st.text(max_size=6)))
        value = draw(change_value)
        if value is DELETE:
            rows[i].pop(key, None)
        else:
            rows[i][key] = value
        changes.setdefault(i, []).append((key, value))
    return rows, changes


def must_fail(case: Case, rows: list[dict[str, Any]]) -> bool:
    for r in rows:
        if any(k not in r for k in case.required + case.required_str):
            return True
        if any(not isinstance(r[k], str) or not r[k].strip() for k in case.required_str):
            return True
    return False


def check_suite_rows(tmp: Path, case: Case, rows: list[dict[str, Any]], changes: dict[int, Any]) -> None:
    path = tmp / case.file_name
    write_rows(path, rows)
    options = {k: (str(tmp / v) if k == "image_cache" else v) for k, v in case.options.items()}
    data = path
    if case.prior:
        data = tmp / "main.jsonl"
        write_rows(data, BASE_ROWS["rewardbench"])
        options["prior_sets"] = str(path)
    suite = get_suite_class(case.suite)(get_suite_class(case.suite).Options(**options))
    try:
        items = suite.load(str(data))
    except DataError as e:
        assert_names_file(e, path)
        named = {int(m) for m in re.findall(r"\brow (\d+)\b", str(e))}
        allowed = {k + 1 for i in changes for k in case.related(rows, i)}
        assert named & allowed, f"{e} (changed rows: {sorted(i + 1 for i in changes)})"
        assert e.field is not None, str(e)
        return
    assert not must_fail(case, rows), f"a required field was removed or made a non-string, yet it loaded: {changes}"
    assert items.num_rows == case.n_items(rows)  # nothing dropped
    for meta in items.column("meta").to_pylist():
        if meta is not None:
            json.loads(meta)


@pytest.mark.parametrize("name", sorted(CASES))
def test_unchanged_rows_load(tmp_path: Path, name: str) -> None:
    check_suite_rows(tmp_path, CASES[name], BASE_ROWS[name], {})  # an error would name no changed row: a failure


WRONG_VALUES = [DELETE, None, 0, -1, 1.5, float("nan"), True, "", " ", "x", SURROGATE, "\x00", "x" * 1_000_000, [],
                [1, "a"], [None], ["x"], {}, {"bytes": "abc", "path": ["p"]}, {"solution": 1, "is_correct": "yes"}]
SPECIAL_NAMES = ["image", "_prior", "_task", "_default_id", "candidates_score", "domain", "language", "tasktype"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_field_of_a_row_given_every_wrong_value(tmp_path: Path, name: str) -> None:
    """Systematic where the fuzzing above samples: each field of one row (and the names loaders treat specially)
    removed or given each value of WRONG_VALUES in turn."""
    case = CASES[name]
    i = min(case.probe_row, len(BASE_ROWS[name]) - 1)
    for key in sorted(set(BASE_ROWS[name][i]) | set(SPECIAL_NAMES)):
        for value in WRONG_VALUES:
            rows = copy.deepcopy(BASE_ROWS[name])
            if value is DELETE:
                if key not in rows[i]:
                    continue
                del rows[i][key]
            else:
                rows[i][key] = value
            check_suite_rows(tmp_path, case, rows, {i: [(key, value)]})


def suite_test(name: str, n: int):
    case = CASES[name]

    @fuzz(n)
    @given(change=changed_rows(name))
    def test(tmp_path_factory, change) -> None:
        check_suite_rows(tmp_path_factory.mktemp(name), case, *change)

    test.__name__ = f"test_changed_rows_{name.replace('-', '_')}"
    return test


test_changed_rows_rewardbench = suite_test("rewardbench", 100)
test_changed_rows_rewardbench_prior_sets = suite_test("rewardbench-prior-sets", 40)
test_changed_rows_rewardbench2 = suite_test("rewardbench2", 80)
test_changed_rows_m_rewardbench = suite_test("m-rewardbench", 60)
test_changed_rows_rag_rewardbench = suite_test("rag-rewardbench", 60)
test_changed_rows_long_rewardbench = suite_test("long-rewardbench", 80)
test_changed_rows_rm_bench = suite_test("rm-bench", 60)
test_changed_rows_rewardmath = suite_test("rewardmath", 80)
test_changed_rows_gsm8k_bon = suite_test("gsm8k-bon", 80)
test_changed_rows_vl_rewardbench = suite_test("vl-rewardbench", 80)
test_changed_rows_judgebench = suite_test("judgebench", 60)


# ---- damaged files: non-UTF-8, cut off, empty --------------------------------------------------------------------

DAMAGE_FORMATS = [("rewardbench", ".jsonl"), ("rewardbench", ".json"), ("rewardbench", ".csv"),
                  ("rewardbench", ".parquet"), ("rm-bench", ".json"), ("rewardbench2", ".jsonl"),
                  ("file", ".csv"), ("file", ".jsonl"), ("file", ".parquet")]
UF_COLUMNS = {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", "subset": "subset", "id": "id"}


def _load_any(name: str, path: Path):
    if name == "file":
        return load_user_file(path, UF_COLUMNS, None)
    return get_suite_class(name)().load(str(path))


def _good_file(tmp: Path, name: str, ext: str) -> tuple[Path, list[dict[str, Any]]]:
    rows = copy.deepcopy(BASE_ROWS["rewardbench" if name == "file" else name])
    if ext in (".csv", ".parquet"):
        rows = [{k: (str(v) if k == "id" else v) for k, v in r.items()} for r in rows]
    stem = "chat_filtered" if name == "rm-bench" else "data"
    path = tmp / f"{stem}{ext}"
    write_rows(path, rows)
    return path, rows


@fuzz(150)
@given(where=st.sampled_from(DAMAGE_FORMATS), at=st.floats(0, 1), junk=st.sampled_from(
    [b"\xff", b"\xc3", b"\xe9\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\x80\x80\x80"]),
       mode=st.sampled_from(["insert", "cut", "overwrite"]))
def test_damaged_files(tmp_path_factory, where: tuple[str, str], at: float, junk: bytes, mode: str) -> None:
    name, ext = where
    tmp = tmp_path_factory.mktemp("damaged")
    path, rows = _good_file(tmp, name, ext)
    data = path.read_bytes()
    pos = int(at * len(data))
    if mode == "insert":
        damaged = data[:pos] + junk + data[pos:]
    elif mode == "overwrite":
        damaged = data[:pos] + junk + data[pos + len(junk):]
    else:
        damaged = data[:pos]
    path.write_bytes(damaged)
    expected = _load_any(name, _rewrite(tmp, name, ext, rows))
    try:
        items = _load_any(name, path)
    except DataError as e:
        assert_names_file(e, path)
        if mode != "cut" and ext in (".jsonl", ".csv") and b"\n" not in junk:
            line = damaged.count(b"\n", 0, pos) + 1
            assert e.row == line or f"line {line}" in str(e), f"expected line {line}: {e}"
        return
    # Loaded: nothing was read from the damage (bytes inside a parquet page, a cut at a record boundary).
    assert items.num_rows <= expected.num_rows
    if ext in (".jsonl", ".json") or mode == "cut" and ext == ".parquet":  # an exact prefix (meta names the file)
        assert items.drop_columns(["meta"]).to_pylist() == expected.drop_columns(["meta"]).to_pylist()[: items.num_rows]
    if mode != "cut" and ext != ".parquet":
        pytest.fail(f"invalid UTF-8 at byte {pos} was accepted")


def _rewrite(tmp: Path, name: str, ext: str, rows: list[dict[str, Any]]) -> Path:
    d = tmp / "good"
    d.mkdir(exist_ok=True)
    stem = "chat_filtered" if name == "rm-bench" else "data"
    write_rows(d / f"{stem}{ext}", rows)
    return d / f"{stem}{ext}"


@pytest.mark.parametrize("ext", [".jsonl", ".json", ".csv", ".parquet"])
@pytest.mark.parametrize("content", [b"", b"\n", b"\n\n  \n", b"\xef\xbb\xbf", b"[]", b"{}"])
def test_empty_files(tmp_path: Path, ext: str, content: bytes) -> None:
    for name in ("rewardbench", "file"):
        path = tmp_path / f"data{ext}"
        path.write_bytes(content)
        with pytest.raises(DataError) as info:
            _load_any(name, path)
        assert_names_file(info.value, path)


@pytest.mark.parametrize("text,row", [
    ('prompt,chosen,rejected,subset,id\nq,c,"r\n', 2),  # a quote left open: the file was cut
    ('prompt,chosen,rejected,subset,id\nq,c,r,s,1\nq,"c"x,r,s,2\n', 3),  # text after a closing quote
    ('prompt,chosen,rejected,subset,id\nq,c,r,s,1\nq,"c, more",r,s,2\nq,c, more,r,s,3\n', 4),  # unquoted comma
    ('prompt,chosen,chosen,subset,id\nq,c,r,s,1\n', 1),  # a duplicated column
])
def test_malformed_csv(tmp_path: Path, text: str, row: int) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        _load_any("file", path)
    assert_names_file(info.value, path)
    assert info.value.row == row, str(info.value)


ANY_FILE = FIXTURES / "userfile" / "ab.csv"  # its bytes would be copied into the cache, never decoded


@pytest.mark.parametrize("rid,image_path", [("../../../escape", None), ("x\x00y", None),
                                            ("ok", "images/povid/../../../../escape.png")])
def test_vl_images_are_never_written_outside_the_cache(tmp_path: Path, rid: str, image_path: str | None) -> None:
    row = dict(BASE_ROWS["vl-rewardbench"][0], id=rid, image={"path": str(ANY_FILE)})
    if image_path is None:
        row.pop("image_path")
    else:
        row["image_path"] = image_path
    write_rows(tmp_path / "data.jsonl", [row])
    cls = get_suite_class("vl-rewardbench")
    with pytest.raises(DataError) as info:
        cls(cls.Options(image_cache=str(tmp_path / "cache"))).load(str(tmp_path / "data.jsonl"))
    assert info.value.row == 1 and info.value.field in ("id", "image_path"), str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]


def test_csv_header_only_and_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("prompt,chosen,rejected,subset,id\n", encoding="utf-8")
    with pytest.raises(DataError, match="no items"):
        _load_any("file", path)
    path.write_text("prompt,chosen,rejected,subset,id\nq,c,r,s,1\nq,c,r,s\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        _load_any("file", path)
    assert info.value.row == 3, str(info.value)
    path.write_text("prompt,chosen,rejected,subset,id\nq,c,r,s,1,extra\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        _load_any("file", path)
    assert info.value.row == 2, str(info.value)


@pytest.mark.parametrize("ext", [".jsonl", ".json", ".csv", ".parquet"])
def test_huge_texts_load_verbatim(tmp_path: Path, ext: str) -> None:
    """1 MB prompts and responses (long-context suites have them) load as they are, csv included."""
    big = ("a\u00e9\u4e2d\U0001f600 " * 200_000)[:1_000_000]
    rows = [{"prompt": big, "chosen": big + "c", "rejected": "r" + big, "subset": "s", "id": "1"}]
    write_rows(tmp_path / f"data{ext}", rows)
    items = _load_any("file", tmp_path / f"data{ext}").to_pylist()
    assert items[0]["candidates"] == [big + "c", "r" + big] and items[0]["prompt"][0]["content"] == big


def test_fuzz_cases_cover_every_suite_with_local_files() -> None:
    from rmorch.suites import suite_names

    built_in = {n for n in suite_names() if getattr(get_suite_class(n), "_alias_of", None) is None}  # not `kind:`
    assert {c.suite for c in CASES.values()} | {"file"} == built_in
