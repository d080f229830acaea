"""Reading raw benchmark records from local files (jsonl, json, parquet, csv) or the Hugging Face hub.

Every record carries its source and row number so that a loader can name file, row and field in its errors.
Rows are numbered from 1: the line number for jsonl and csv (header is line 1, so data starts at 2), the record
number for json and parquet.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rmorch.core.errors import DataError, UserError

EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv")


@dataclass(frozen=True)
class Record:
    source: str  # file path or "hub:<id>:<split>"
    row: int
    data: dict[str, Any]

    @property
    def where(self) -> str:
        return f"{self.source}: row {self.row}"


def data_files(path: str) -> list[str]:
    """The data files at `path`: the file itself, or the supported files directly inside a directory, sorted."""
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, f) for f in os.listdir(path) if f.endswith(EXTENSIONS) and not f.startswith(".")
        )
        if not files:
            raise DataError(path, f"no data files ({', '.join(EXTENSIONS)}) in this directory")
        return files
    if not os.path.exists(path):
        raise DataError(path, "no such file or directory")
    if not path.endswith(EXTENSIONS):
        raise DataError(path, f"unsupported file type; expected one of {', '.join(EXTENSIONS)}")
    return [path]


def read_local(path: str) -> Iterator[Record]:
    for file in data_files(path):
        yield from read_file(file)


def read_file(file: str) -> Iterator[Record]:
    try:
        if file.endswith(".jsonl"):
            yield from _read_jsonl(file)
        elif file.endswith(".json"):
            yield from _read_json(file)
        elif file.endswith(".parquet"):
            yield from _read_parquet(file)
        else:
            yield from _read_csv(file)
    except UnicodeDecodeError:
        raise _utf8_error(file) from None
    except OSError as e:
        raise DataError(file, f"cannot read: {e.strerror or e}") from None


def _utf8_error(file: str) -> DataError:
    """Locate the first invalid byte in the whole file (the decoder's offset is relative to its chunk). The line is
    the row of line-numbered formats (jsonl, csv); json records are not lines, so there it is only in the message."""
    with open(file, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        row = line if file.endswith((".jsonl", ".csv")) else None
        return DataError(file, f"not valid UTF-8 ({e.reason} at byte {e.start}, line {line})", row=row)
    return DataError(file, "not valid UTF-8")


# A JSON \u escape of a lone UTF-16 surrogate (D800-DFFF) decodes to a str that cannot be encoded as UTF-8 again:
# arrow, hashing and printing would all fail on it far from the file, so the reader refuses it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_surrogates(file: str, row: int | None, value: Any, text: str) -> None:
    """A DataError naming the (top-level) field of the first text holding a lone surrogate, if any."""
    if not _SURROGATE_ESCAPE.search(text):
        return

    def bad(v: Any) -> bool:
        if isinstance(v, str):
            return _SURROGATE.search(v) is not None
        if isinstance(v, dict):
            return any(bad(k) or bad(x) for k, x in v.items())
        if isinstance(v, list):
            return any(bad(x) for x in v)
        return False

    items = value.items() if isinstance(value, dict) else [(None, value)]
    for key, v in items:
        if bad(key) or bad(v):
            name = None if key is None else key.encode("utf-8", "backslashreplace").decode()
            raise DataError(file, "text holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair): "
                                  "not valid unicode", row=row, field=name)


def _as_object(file: str, row: int, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(file, f"expected a JSON object, got {type(value).__name__}", row=row)
    return value


def _read_jsonl(file: str) -> Iterator[Record]:
    with open(file, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(file, f"invalid JSON: {e.msg} (column {e.colno})", row=line_no) from None
            except (ValueError, RecursionError) as e:  # an integer of over 4300 digits; nesting too deep
                raise DataError(file, f"invalid JSON: {_json_limit(e)}", row=line_no) from None
            record = _as_object(file, line_no, value)
            _check_surrogates(file, line_no, record, line)
            yield Record(file, line_no, record)


def _json_limit(e: Exception) -> str:
    return "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]


def _read_json(file: str) -> Iterator[Record]:
    with open(file, encoding="utf-8") as f:
        text = f.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(file, f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # an integer of over 4300 digits; nesting too deep
        raise DataError(file, f"invalid JSON: {_json_limit(e)}") from None
    if isinstance(value, dict):  # {"data": [...]} or a single-key wrapper
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(file, "expected a JSON list of records (or an object holding exactly one list)")
        value = lists[0]
    if not isinstance(value, list):
        raise DataError(file, "expected a JSON list of records")
    for i, rec in enumerate(value, 1):
        record = _as_object(file, i, rec)
        _check_surrogates(file, i, record, text)
        yield Record(file, i, record)


def _read_parquet(file: str) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(file)
    except Exception as e:  # noqa: BLE001 -- pyarrow raises ArrowInvalid and friends for corrupt files
        raise DataError(file, f"not a readable parquet file: {e}") from None
    row = 0
    batches = pf.iter_batches(batch_size=4096)
    while True:
        try:  # a damaged page fails here, mid-file: ArrowInvalid, OSError, or bad UTF-8 in a string column
            batch = next(batches, None)
            recs = [] if batch is None else batch.to_pylist()
        except Exception as e:  # noqa: BLE001 -- whatever a damaged page raises becomes a DataError
            raise DataError(file, f"not a readable parquet file (in the rows after row {row}): "
                                  f"{type(e).__name__}: {e}") from None
        if batch is None:
            return
        for rec in recs:
            row += 1
            yield Record(file, row, rec)


def _read_csv(file: str) -> Iterator[Record]:
    csv.field_size_limit(2**31 - 1)  # the default (128 KiB per cell) is far below a long-context benchmark's texts
    with open(file, encoding="utf-8-sig", newline="") as f:  # -sig: spreadsheet exports start with a BOM
        # strict: a quote left open (a cut-off file) or stray text after a closing quote is an error, not a guess
        reader = csv.DictReader(f, strict=True)
        done = 0  # the line the last complete record ended on: a bad record starts on the next one
        try:
            header = reader.fieldnames or []
            done = reader.line_num
            dup = sorted({c for c in header if header.count(c) > 1})
            if dup:
                raise DataError(file, f"duplicate column names in the header: {dup}", row=1)
            for rec in reader:
                if None in rec:  # more cells than the header: a text's comma was not quoted, the columns have shifted
                    raise DataError(file, f"{len(header) + len(rec[None])} fields, but the header has {len(header)} "
                                          f"(a comma in an unquoted text?)", row=reader.line_num)
                done = reader.line_num
                yield Record(file, reader.line_num, dict(rec))  # fewer cells: None, refused by the field's check
        except csv.Error as e:
            raise DataError(file, f"invalid csv: {e}", row=done + 1) from None


def read_hub(hub_id: str, split: str, name: str | None = None, data_files: str | None = None) -> Iterator[Record]:
    """Rows of a Hugging Face dataset (its config `name`, or one of its files, `data_files`, whose path then names
    the records' source). Needs network access to the hub (or its local cache)."""
    what = f"'{hub_id}'" + (f" file {data_files}" if data_files else "") + f" (split '{split}')"
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, name, data_files=data_files, split=split)
    except Exception as e:  # noqa: BLE001 -- any failure of the hub or the loader is the user's to fix
        raise UserError(
            f"cannot load Hugging Face dataset {what}: {type(e).__name__}: {e}. "
            "Offline? Give the suite a local copy with `data: PATH`."
        ) from None
    source = f"hub:{hub_id}:{data_files or split}"
    for row, rec in enumerate(ds, 1):
        yield Record(source, row, dict(rec))
