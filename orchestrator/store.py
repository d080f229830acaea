"""The result store: the only place results live.

Layout under OUT:
    spec.yaml                          the resolved spec of the latest sweep
    run.json                           run metadata of the latest sweep (versions, models' settings hashes, timings)
    items/<suite>.parquet              the canonical item table each suite was scored on
    results/<model>/<suite>/<key>.parquet   one file per finished work unit (RESULT_SCHEMA)
    manifest/<key>.json                one entry per finished work unit, written after its results file

A unit is finished when its manifest entry exists and its results file is there with the recorded row count.
Every file is written to a temporary name and renamed, so readers see whole files or nothing; a crash between the
results file and its manifest entry only means the unit is computed again.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.schema import RESULT_SCHEMA, empty_results


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


_UMASK = os.umask(0)
os.umask(_UMASK)


def _segment(name: str) -> str:
    """A model or suite name as one safe path segment ('org/model' -> 'org%2Fmodel')."""
    return urllib.parse.quote(name, safe="-_.")


class ResultStore:
    def __init__(self, root: str):
        self.root = root

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    # ---- atomic writes ---------------------------------------------------------------------------------------
    def _atomic(self, rel: str, write: Any) -> None:
        final = self.path(rel)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(final), prefix=".tmp-", suffix=os.path.basename(final))
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are for the whole team to read
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def write_text(self, rel: str, text: str) -> None:
        def w(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())

        self._atomic(rel, w)

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_text(rel, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n")

    def read_json(self, rel: str) -> Any:
        with open(self.path(rel), encoding="utf-8") as f:
            return json.load(f)

    def exists(self, rel: str) -> bool:
        return os.path.exists(self.path(rel))

    def _write_parquet(self, rel: str, table: pa.Table) -> None:
        self._atomic(rel, lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    # ---- items -------------------------------------------------------------------------------------------------
    def write_items(self, suite: str, table: pa.Table) -> None:
        self._write_parquet(f"items/{_segment(suite)}.parquet", table)

    def read_items(self, suite: str) -> pa.Table:
        return pq.read_table(self.path("items", f"{_segment(suite)}.parquet"))

    def item_suites(self) -> list[str]:
        d = self.path("items")
        if not os.path.isdir(d):
            return []
        return sorted(urllib.parse.unquote(f[: -len(".parquet")]) for f in os.listdir(d) if f.endswith(".parquet"))

    # ---- units -------------------------------------------------------------------------------------------------
    def write_unit(self, entry: ManifestEntry, table: pa.Table) -> None:
        """Results first, then the manifest entry: the entry is the commit point."""
        if table.schema != RESULT_SCHEMA:
            table = table.cast(RESULT_SCHEMA)
        self._write_parquet(entry.file, table)
        self.write_json(f"manifest/{entry.key}.json", asdict(entry))

    @staticmethod
    def unit_file(model: str, suite: str, key: str) -> str:
        return f"results/{_segment(model)}/{_segment(suite)}/{key}.parquet"

    def manifest(self) -> Iterator[ManifestEntry]:
        d = self.path("manifest")
        if not os.path.isdir(d):
            return
        for name in sorted(os.listdir(d)):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    entry = ManifestEntry(**json.load(f))
            except (OSError, ValueError, TypeError):
                continue  # unreadable entry: the unit counts as unfinished and is recomputed
            if os.path.exists(self.path(entry.file)):
                yield entry

    def done_keys(self) -> set[str]:
        return {e.key for e in self.manifest()}

    def read_results(self, entries: Iterable[ManifestEntry]) -> pa.Table:
        tables = [pq.read_table(self.path(e.file), schema=RESULT_SCHEMA) for e in entries]
        return pa.concat_tables(tables) if tables else empty_results()
