"""The result store: the only place results live, on a local path or a filesystem URI (rmorch.orchestrator.store.storage).

Layout under OUT:
    spec.yaml                          the resolved spec of the latest sweep
    run.json                           run metadata of the latest sweep (versions, models' settings hashes, timings)
    plan.json                          the latest sweep's units per model and suite (for `rmorch status`)
    items/<suite>.parquet              the canonical item table each suite was scored on
    results/<model>/<suite>/<key>.parquet   one file per finished work unit (RESULT_SCHEMA)
    manifest/<key>.json                one entry per finished work unit, written after its results file

Every file is written whole or not at all (rename on a local disk, one object upload on an object store). A unit is
finished when its manifest entry (the commit point) reads back and its results file is the one the entry records:
same size and SHA-256 (entries of older rmorch versions: a readable table of the recorded row count). Anything
else -- a crash between the two writes, a truncated or corrupted file, an unreadable entry -- is reported (a
warning naming the file, kept in `problems`) and the unit counts as unfinished, so the next sweep computes it again;
such a file is never read as data.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import posixpath
import shutil
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rmorch.core.errors import UserError
from rmorch.core.schema import RESULT_SCHEMA, empty_results
from rmorch.orchestrator.plan.items import read_scoring_view
from rmorch.orchestrator.store.storage import FileStat, open_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManifestEntry:
    key: str
    model: str
    suite: str
    shard: int
    file: str  # relative to OUT
    n_rows: int
    n_errors: int
    seconds: float
    size: int | None = None  # bytes of the results file (filled in by write_unit)
    sha256: str | None = None  # of the results file (filled in by write_unit)
    identity: str | None = None  # of the unit's rows (rmorch.orchestrator.plan.provenance); None: an older rmorch


class CorruptFile(UserError):
    """A file of the store that exists but cannot be used (truncated, corrupted, not what its entry records)."""


def _segment(name: str) -> str:
    """A model or suite name as one safe path segment ('org/model' -> 'org%2Fmodel')."""
    return urllib.parse.quote(name, safe="-_.")


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _entry_from_json(data: Any) -> ManifestEntry:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, found {type(data).__name__}")
    known = {f.name for f in fields(ManifestEntry)}
    entry = ManifestEntry(**{k: v for k, v in data.items() if k in known})
    parts = entry.file.split("/")
    if entry.file.startswith("/") or ".." in parts or parts[0] != "results":
        raise ValueError(f"results file '{entry.file}' is not under results/")
    return entry


class ResultStore:
    def __init__(self, root: str):
        self.root = root
        self.files = open_files(root)
        self.problems: list[str] = []  # every unusable file met so far, as reported

    def path(self, *parts: str) -> str:
        """Where OUT/parts is (a local path, or the file's URI on a remote store): for messages and listings."""
        return self.files.url("/".join(parts))

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)
            log.warning("%s", message)

    # ---- whole-file writes and reads -----------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> None:
        self.files.put(rel, data)

    def write_atomic(self, rel: str, write: Callable[[str], None]) -> None:
        """Write OUT/rel through `write(path)` (a library that only writes to paths, e.g. matplotlib): readers see
        all of it or nothing."""
        self.files.put_from(rel, write)

    def write_text(self, rel: str, text: str) -> None:
        self.files.put(rel, text.encode("utf-8"))

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_text(rel, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n")

    def read_bytes(self, rel: str) -> bytes:
        return self.files.get(rel)

    def read_text(self, rel: str) -> str:
        return self.files.get(rel).decode("utf-8")

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_text(rel))

    def exists(self, rel: str) -> bool:
        return self.files.exists(rel)

    def stat(self, rel: str) -> FileStat | None:
        return self.files.stat(rel)

    def listing(self, rel_dir: str) -> dict[str, FileStat]:
        """Files under OUT/rel_dir (recursively) by path relative to OUT, with sizes and modification times."""
        return self.files.listing(rel_dir)

    # ---- items -------------------------------------------------------------------------------------------------
    @staticmethod
    def items_file(suite: str) -> str:
        return f"items/{_segment(suite)}.parquet"

    def write_items(self, suite: str, table: pa.Table) -> None:
        self.write_bytes(self.items_file(suite), _parquet_bytes(table))

    def write_items_file(self, suite: str, path: str) -> None:
        """The suite's items from a local Parquet items file (rmorch.orchestrator.plan.items.ItemFile), copied as it is."""
        self.write_atomic(self.items_file(suite), lambda tmp: shutil.copyfile(path, tmp))

    def has_items(self, suite: str) -> bool:
        return self.exists(self.items_file(suite))

    def read_items(self, suite: str) -> pa.Table:
        """The suite's items; a file that does not read back raises CorruptFile (a sweep writes it again)."""
        return self._items(suite, lambda f: pq.read_table(f))

    def read_scoring_items(self, suite: str) -> pa.Table:
        """The suite's items without their texts (rmorch.core.schema.SCORING_SCHEMA: what every metric reads), read
        one row group at a time; errors as `read_items`."""
        return self._items(suite, read_scoring_view)

    def _items(self, suite: str, read: Callable[[pa.NativeFile], pa.Table]) -> pa.Table:
        rel = self.items_file(suite)
        try:
            with self.files.open_input(rel) as f:
                return read(f)
        except (pa.ArrowException, OSError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            message = (f"{self.path(rel)}: items file is unreadable ({type(e).__name__}: {e}); rerun the sweep to "
                       f"write it again")
            self._problem(message)
            raise CorruptFile(message) from None

    def item_suites(self) -> list[str]:
        names = [posixpath.basename(rel) for rel in self.listing("items")]
        return sorted(urllib.parse.unquote(n[: -len(".parquet")]) for n in names if n.endswith(".parquet"))

    # ---- units -------------------------------------------------------------------------------------------------
    @staticmethod
    def unit_file(model: str, suite: str, key: str) -> str:
        return f"results/{_segment(model)}/{_segment(suite)}/{key}.parquet"

    def write_unit(self, entry: ManifestEntry, table: pa.Table) -> ManifestEntry:
        """Results first, then the manifest entry (with the results file's size and hash): the commit point."""
        if table.schema != RESULT_SCHEMA:
            table = table.cast(RESULT_SCHEMA)
        data = _parquet_bytes(table)
        entry = replace(entry, n_rows=table.num_rows, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        self.write_bytes(entry.file, data)
        self.write_json(f"manifest/{entry.key}.json", asdict(entry))
        return entry

    def manifest(self, verify: bool = False) -> Iterator[ManifestEntry]:
        """The finished units, by key order. Always checked: the entry reads back and its results file exists with
        the recorded size. With verify, also the file's content (hash, or a full read for older entries): what a
        sweep uses before it skips a unit. Everything that fails is reported and left out."""
        listed = self.listing("manifest")
        names = sorted(rel for rel in listed if rel.endswith(".json") and not posixpath.basename(rel).startswith("."))
        results = self.listing("results")
        entries = self.files.map(self._read_entry, names)
        intact = [e for e in entries if e is not None and self._file_matches(e, results.get(e.file))]
        if verify:
            ok = self.files.map(self._content_matches, intact)
            intact = [e for e, good in zip(intact, ok) if good]
        yield from intact

    def entry_times(self) -> dict[str, float]:
        """When each manifest entry was written (unit key -> Unix time, where the filesystem says)."""
        out = {}
        for rel, st in self.listing("manifest").items():
            if rel.endswith(".json") and st.mtime is not None:
                out[posixpath.basename(rel)[: -len(".json")]] = st.mtime
        return out

    def done_keys(self) -> set[str]:
        """Keys of the units whose results are verified whole: what a (re)run may skip."""
        return {e.key for e in self.manifest(verify=True)}

    def unit_entry(self, key: str) -> ManifestEntry | None:
        """The manifest entry of unit `key`; None when there is none (an unreadable one is reported)."""
        rel = f"manifest/{key}.json"
        return self._read_entry(rel) if self.exists(rel) else None

    def read_results(self, entries: Iterable[ManifestEntry], columns: list[str] | None = None) -> pa.Table:
        """The result rows of these units (only `columns` of RESULT_SCHEMA, if given); a file that is not what its
        entry records is reported and left out (its items then count as missing), never read as data."""
        tables = [t for t in self.files.map(lambda e: self._read_unit(e, columns), list(entries)) if t is not None]
        table = pa.concat_tables(tables) if tables else empty_results()
        return table.select(columns) if columns is not None and not tables else table

    # ---- checks ------------------------------------------------------------------------------------------------
    def _read_entry(self, rel: str) -> ManifestEntry | None:
        try:
            return _entry_from_json(self.read_json(rel))
        except (OSError, ValueError, TypeError, UnicodeDecodeError) as e:
            self._problem(f"{self.path(rel)}: unreadable manifest entry ({type(e).__name__}: {e}); its unit will "
                          f"be computed again")
            return None

    def _file_matches(self, entry: ManifestEntry, stat: FileStat | None) -> bool:
        if stat is None:
            return False  # a crash between the results file and its entry, or a file removed: simply unfinished
        if entry.size is not None and stat.size != entry.size:
            self._problem(f"{self.path(entry.file)}: {stat.size} bytes, its manifest entry records {entry.size} "
                          f"(truncated or replaced); unit {entry.key} will be computed again")
            return False
        return True

    def _content_matches(self, entry: ManifestEntry) -> bool:
        if entry.sha256 is None:  # an older entry: only a full read tells
            return self._read_unit(entry) is not None
        return self._verified_bytes(entry) is not None  # the bytes written, so a table that reads

    def _verified_bytes(self, entry: ManifestEntry) -> bytes | None:
        where = self.path(entry.file)
        try:
            data = self.read_bytes(entry.file)
        except OSError as e:
            self._problem(f"{where}: cannot read ({e}); unit {entry.key} will be computed again")
            return None
        if entry.sha256 is not None and hashlib.sha256(data).hexdigest() != entry.sha256:
            self._problem(f"{where}: content differs from its manifest entry (corrupted); unit {entry.key} will be "
                          f"computed again")
            return None
        return data

    def _read_unit(self, entry: ManifestEntry, columns: list[str] | None = None) -> pa.Table | None:
        where = self.path(entry.file)
        data = self._verified_bytes(entry)
        if data is None:
            return None
        try:
            table = pq.read_table(io.BytesIO(data), schema=RESULT_SCHEMA, columns=columns)
        except (pa.ArrowException, OSError) as e:
            self._problem(f"{where}: not a readable results table ({type(e).__name__}: {e}); unit {entry.key} will "
                          f"be computed again")
            return None
        if table.num_rows != entry.n_rows:
            self._problem(f"{where}: {table.num_rows} rows, its manifest entry records {entry.n_rows}; unit "
                          f"{entry.key} will be computed again")
            return None
        return table
