"""Bad input files at the loader level: every problem is a DataError (a UserError) naming the file and, where there
is one, the row and the field. Small files are written from real rows of RewardBench's filtered.jsonl."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rmorch.core.errors import DataError, UserError
from rmorch.suites import get_suite_class
from tests.conftest import SHARED_DATA

RB_FILE = SHARED_DATA / "rewardbench" / "filtered.jsonl"
FIELDS = ["prompt", "chosen", "chosen_model", "rejected", "rejected_model", "subset", "id"]


@pytest.fixture(scope="module")
def real_rows() -> list[dict[str, Any]]:
    """Six real rows from six different subsets (short ones first, to keep the files small)."""
    assert RB_FILE.is_file(), f"missing {RB_FILE}"
    by_subset: dict[str, dict[str, Any]] = {}
    with open(RB_FILE, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            size = len(r["prompt"]) + len(r["chosen"]) + len(r["rejected"])
            prev = by_subset.get(r["subset"])
            if prev is None or size < prev[0]:
                by_subset[r["subset"]] = (size, r)
    rows = [r for _, r in sorted(by_subset.values(), key=lambda x: x[0])[:6]]
    assert len({r["subset"] for r in rows}) == 6
    assert set(rows[0]) == set(FIELDS)
    return rows


@pytest.fixture()
def rows(real_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in real_rows]


def load(path: Path | str) -> pa.Table:
    return get_suite_class("rewardbench")().load(str(path))


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


def data_error(path: Path | str) -> DataError:
    with pytest.raises(DataError) as info:
        load(path)
    e = info.value
    assert isinstance(e, UserError)
    return e


def assert_names(e: DataError, file: Path, row: int | None = None, field: str | None = None) -> None:
    msg = str(e)
    assert str(file) in msg, msg
    if row is not None:
        assert f"row {row}" in msg, msg
        assert e.row == row
    if field is not None:
        assert f"field '{field}'" in msg, msg
        assert e.field == field


# ---- row-level problems -------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["prompt", "chosen", "rejected", "subset", "id"])
def test_missing_column(tmp_path: Path, rows: list[dict], field: str) -> None:
    del rows[2][field]
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    e = data_error(path)
    assert_names(e, path, row=3, field=field)
    assert "missing" in str(e)


@pytest.mark.parametrize("field", ["prompt", "chosen", "rejected"])
@pytest.mark.parametrize("value", ["", "   \n\t"])
def test_empty_string(tmp_path: Path, rows: list[dict], field: str, value: str) -> None:
    rows[3][field] = value
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    e = data_error(path)
    assert_names(e, path, row=4, field=field)
    assert "empty" in str(e)


@pytest.mark.parametrize("value", [5, 1.5, ["a", "b"], {"text": "a"}, None, True])
def test_non_string_rejected(tmp_path: Path, rows: list[dict], value: Any) -> None:
    rows[1]["rejected"] = value
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    e = data_error(path)
    assert_names(e, path, row=2, field="rejected")
    assert "expected a string" in str(e)
    assert type(value).__name__ in str(e)


def test_non_string_subset(tmp_path: Path, rows: list[dict]) -> None:
    rows[0]["subset"] = 7
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    assert_names(data_error(path), path, row=1, field="subset")


def test_unknown_subset(tmp_path: Path, rows: list[dict]) -> None:
    rows[4]["subset"] = "alpacaeval-medium"
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    e = data_error(path)
    assert_names(e, path, row=5, field="subset")
    assert "alpacaeval-medium" in str(e)


def test_duplicate_item_key_names_both_places(tmp_path: Path, rows: list[dict]) -> None:
    rows.append(dict(rows[1], chosen="another chosen response"))  # same subset + id as row 2, now at row 7
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    e = data_error(path)
    msg = str(e)
    assert f"{path}: row 7" in msg, msg
    assert f"{path}: row 2" in msg, msg
    assert f"{rows[1]['subset']}/{rows[1]['id']}" in msg
    assert "duplicate" in msg


def test_duplicate_item_key_across_files(tmp_path: Path, rows: list[dict]) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    a = write_jsonl(d / "a.jsonl", rows[:3])
    b = write_jsonl(d / "b.jsonl", [rows[4], rows[0]])
    e = data_error(d)
    assert f"{b}: row 2" in str(e), str(e)
    assert f"{a}: row 1" in str(e), str(e)


def test_same_id_in_different_subsets_is_not_a_duplicate(tmp_path: Path, rows: list[dict]) -> None:
    rows[1]["id"] = rows[0]["id"]
    assert rows[0]["subset"] != rows[1]["subset"]
    items = load(write_jsonl(tmp_path / "data.jsonl", rows))
    assert items.num_rows == len(rows)


def test_invalid_json_line_row_is_the_line_number(tmp_path: Path, rows: list[dict]) -> None:
    lines = [json.dumps(r) for r in rows]
    lines.insert(1, "")  # blank lines are skipped but still count as lines
    lines[3] = lines[3][:-5]  # line 4: truncated object
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    e = data_error(path)
    assert_names(e, path, row=4)
    assert "invalid JSON" in str(e)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path, rows: list[dict]) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", [rows[0], [rows[1]["prompt"]], rows[2]])
    e = data_error(path)
    assert_names(e, path, row=2)
    assert "object" in str(e)


def _non_utf8_jsonl(path: Path, rows: list[dict], bad_line: int) -> Path:
    data = b""
    for i, r in enumerate(rows, 1):
        line = (json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8")
        if i == bad_line:
            line = line.replace(b'"chosen": "', b'"chosen": "\xff\xfe', 1)
        data += line
    path.write_bytes(data)
    return path


def test_non_utf8_bytes(tmp_path: Path, rows: list[dict]) -> None:
    path = _non_utf8_jsonl(tmp_path / "data.jsonl", rows, bad_line=3)
    e = data_error(path)
    assert_names(e, path)
    assert "UTF-8" in str(e)


def test_non_utf8_bytes_name_the_row(tmp_path: Path, real_rows: list[dict]) -> None:
    """The bad byte sits on line 40, well past the first 8 KiB read buffer: the error must name line 40 (and any byte
    offset it gives must be the offset in the file, not in the decoder's current chunk)."""
    big = [dict(real_rows[i % 6], id=1_000_000 + i) for i in range(60)]
    for r in big:
        r["chosen"] = r["chosen"] + " padding" * 40
    path = _non_utf8_jsonl(tmp_path / "data.jsonl", big, bad_line=40)
    raw = path.read_bytes()
    assert raw.index(b"\xff") > 8192
    e = data_error(path)
    problems = []
    bad_at = raw.index(b"\xff")
    offset = re.search(r"byte (\d+)", str(e))
    if offset and int(offset.group(1)) != bad_at:
        problems.append(f"says byte {offset.group(1)}, the bad byte is at file offset {bad_at}")
    if "row 40" not in str(e) or e.row != 40:
        problems.append("does not name row 40")
    assert not problems, f"{e}: " + "; ".join(problems)
    assert_names(e, path, row=40)


def test_non_utf8_bytes_in_csv(tmp_path: Path, rows: list[dict]) -> None:
    path = write_csv(tmp_path / "data.csv", rows)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\n\xff", 1))
    e = data_error(path)
    assert_names(e, path)
    assert "UTF-8" in str(e)


# ---- file-level problems ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,content", [
    ("empty.jsonl", ""),
    ("blank.jsonl", "\n\n  \n"),
    ("empty.csv", ""),
    ("header-only.csv", ",".join(FIELDS) + "\n"),
    ("empty-list.json", "[]"),
    ("zero-bytes.json", ""),
    ("zero-bytes.parquet", ""),
])
def test_empty_file(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert_names(data_error(path), path)


def test_empty_parquet_table(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({f: pa.array([], pa.string()) for f in FIELDS}), path)
    e = data_error(path)
    assert_names(e, path)
    assert "no items" in str(e)


def test_directory_without_data_files(tmp_path: Path) -> None:
    d = tmp_path / "nodata"
    d.mkdir()
    (d / "README.md").write_text("not data")
    (d / ".hidden.jsonl").write_text("{}\n")
    e = data_error(d)
    assert_names(e, d)
    assert "no data files" in str(e)


def test_nonexistent_path(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "data.jsonl"
    e = data_error(path)
    assert_names(e, path)
    assert "no such file" in str(e)


def test_unsupported_extension(tmp_path: Path, rows: list[dict]) -> None:
    path = write_jsonl(tmp_path / "data.txt", rows)
    e = data_error(path)
    assert_names(e, path)
    assert ".jsonl" in str(e)


@pytest.mark.parametrize("how", ["garbage", "truncated", "corrupt-pages"])
def test_corrupt_parquet(tmp_path: Path, rows: list[dict], how: str) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist(rows), good, compression="snappy")
    raw = bytearray(good.read_bytes())
    if how == "garbage":
        raw = bytearray(b"PAR1 this is not a parquet file")
    elif how == "truncated":
        raw = raw[: len(raw) // 2]
    else:  # valid header and footer, scrambled data pages
        for i in range(8, len(raw) // 2):
            raw[i] ^= 0x5A
    path = tmp_path / "bad.parquet"
    path.write_bytes(bytes(raw))
    assert_names(data_error(path), path)


def test_json_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"a": 1, "b": 2}')
    assert_names(data_error(path), path)


def test_json_invalid(tmp_path: Path, rows: list[dict]) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows)[:-10])
    e = data_error(path)
    assert_names(e, path)
    assert "invalid JSON" in str(e)


def test_json_record_number_is_the_row(tmp_path: Path, rows: list[dict]) -> None:
    del rows[4]["chosen"]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows, indent=2))
    assert_names(data_error(path), path, row=5, field="chosen")


def test_parquet_record_number_is_the_row(tmp_path: Path, rows: list[dict]) -> None:
    rows[3]["rejected"] = None
    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert_names(data_error(path), path, row=4, field="rejected")


def test_parquet_missing_column(tmp_path: Path, rows: list[dict]) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "prompt"} for r in rows]), path)
    assert_names(data_error(path), path, row=1, field="prompt")


def test_csv_row_is_the_line_number(tmp_path: Path, rows: list[dict]) -> None:
    single_line = [dict(r, prompt=r["prompt"].replace("\n", " "), chosen=r["chosen"].replace("\n", " "),
                        rejected=r["rejected"].replace("\n", " ")) for r in rows]
    single_line[2]["chosen"] = ""
    path = write_csv(tmp_path / "data.csv", single_line)
    assert_names(data_error(path), path, row=4, field="chosen")  # header is line 1


def test_csv_short_row(tmp_path: Path, rows: list[dict]) -> None:
    path = write_csv(tmp_path / "data.csv", rows[:2])
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write('"just a prompt","just chosen"\r\n')
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        last = [reader.line_num for _ in reader][-1]
    e = data_error(path)
    assert_names(e, path, row=last, field="subset")  # the first field the loader checks


def test_csv_row_of_a_multiline_record_lies_within_the_record(tmp_path: Path, rows: list[dict]) -> None:
    rows[1]["prompt"] = "line one\nline two\nline three"
    rows[1]["chosen"] = "first\nsecond"
    rows[1]["rejected"] = ""
    path = write_csv(tmp_path / "data.csv", rows)
    bounds = []  # (first line, last line) of each record, header included
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        prev = 0
        for _ in reader:
            bounds.append((prev + 1, reader.line_num))
            prev = reader.line_num
    first_line, last_line = bounds[2]  # header, record 1, record 2
    assert last_line - first_line == 3
    e = data_error(path)
    assert_names(e, path, field="rejected")
    assert e.row is not None and first_line <= e.row <= last_line, (e.row, first_line, last_line)


# ---- valid files in every format give the same items ---------------------------------------------------------


def _comparable(items: pa.Table, stringify_meta_ids: bool = False) -> list[dict[str, Any]]:
    out = []
    for r in items.to_pylist():
        r = dict(r)
        meta = json.loads(r.pop("meta")) if r["meta"] else {}
        if stringify_meta_ids and "id" in meta:
            meta["id"] = str(meta["id"])
        r["meta"] = meta
        out.append(r)
    return out


def test_formats_give_the_same_items(tmp_path: Path, rows: list[dict]) -> None:
    reference = load(write_jsonl(tmp_path / "data.jsonl", rows))
    assert reference.num_rows == len(rows)
    assert reference.column("item_id").to_pylist() == [f"{r['subset']}/{r['id']}" for r in rows]
    assert [c for c in reference.column("candidates").to_pylist()] == [[r["chosen"], r["rejected"]] for r in rows]
    assert reference.column("prompt").to_pylist() == [[{"role": "user", "content": r["prompt"]}] for r in rows]

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    assert load(tmp_path / "data.parquet").equals(reference)

    (tmp_path / "list.json").write_text(json.dumps(rows))
    assert load(tmp_path / "list.json").equals(reference)
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": rows}))
    assert load(tmp_path / "wrapped.json").equals(reference)

    # CSV has no types: ids come back as strings in `meta`; everything else is identical.
    csv_items = load(write_csv(tmp_path / "data.csv", rows))
    assert _comparable(csv_items, stringify_meta_ids=True) == _comparable(reference, stringify_meta_ids=True)
    assert csv_items.drop_columns(["meta"]).equals(reference.drop_columns(["meta"]))


def test_directory_reads_all_files_in_sorted_order(tmp_path: Path, rows: list[dict]) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    write_jsonl(d / "b.jsonl", rows[3:])
    pq.write_table(pa.Table.from_pylist(rows[:3]), d / "a.parquet")
    (d / "notes.txt").write_text("ignored")
    items = load(d)
    assert items.column("item_id").to_pylist() == [f"{r['subset']}/{r['id']}" for r in rows]


def test_the_real_file_loads() -> None:
    items = load(RB_FILE)
    assert items.num_rows == 2985
    assert len(set(items.column("subset").to_pylist())) == 23
    assert len(set(items.column("item_id").to_pylist())) == 2985
