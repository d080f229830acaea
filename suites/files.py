"""Reading raw benchmark records from local files (jsonl, json, parquet, csv) or the Hugging Face hub.

Every record carries its source and row number so that a loader can name file, row and field in its errors.
Rows are numbered from 1: the line number for jsonl and csv (header is line 1, so data starts at 2), the record
number for json and parquet.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

from orchestrator.errors import DataError, UserError

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
    """Locate the first invalid byte in the whole file (the decoder's offset is relative to its chunk)."""
    with open(file, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return DataError(file, f"not valid UTF-8 ({e.reason} at byte {e.start}, line {line})", row=line)
    return DataError(file, "not valid UTF-8")


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
            yield Record(file, line_no, _as_object(file, line_no, value))


def _read_json(file: str) -> Iterator[Record]:
    with open(file, encoding="utf-8") as f:
        try:
            value = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(file, f"invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    if isinstance(value, dict):  # {"data": [...]} or a single-key wrapper
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(file, "expected a JSON list of records (or an object holding exactly one list)")
        value = lists[0]
    if not isinstance(value, list):
        raise DataError(file, "expected a JSON list of records")
    for i, rec in enumerate(value, 1):
        yield Record(file, i, _as_object(file, i, rec))


def _read_parquet(file: str) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(file)
    except Exception as e:  # pyarrow raises ArrowInvalid and friends for corrupt files
        raise DataError(file, f"not a readable parquet file: {e}") from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            row += 1
            yield Record(file, row, rec)


def _read_csv(file: str) -> Iterator[Record]:
    with open(file, encoding="utf-8-sig", newline="") as f:  # -sig: spreadsheet exports start with a BOM
        reader = csv.DictReader(f)
        for rec in reader:
            yield Record(file, reader.line_num, dict(rec))


def read_hub(hub_id: str, split: str, name: str | None = None) -> Iterator[Record]:
    """Rows of a Hugging Face dataset. Needs network access to the hub (or its local cache)."""
    try:
        import datasets

        ds = datasets.load_dataset(hub_id, name, split=split)
    except Exception as e:
        raise UserError(
            f"cannot load Hugging Face dataset '{hub_id}' (split '{split}'): {type(e).__name__}: {e}. "
            "Offline? Give the suite a local copy with `data: PATH`."
        ) from None
    source = f"hub:{hub_id}:{split}"
    for row, rec in enumerate(ds, 1):
        yield Record(source, row, dict(rec))
