"""A suite's item table as the driver holds it: texts spooled to a local Parquet file, narrow columns in memory.

A large suite's texts (1M RewardBench-shaped items: ~1.3 GiB in Arrow) never sit whole in the driver's memory.
While a suite loads, its validated batches are written to `ItemFile`, a Parquet file in ITEM_SCHEMA (zstd, row
groups of ROW_GROUP_ROWS items) in a driver-local scratch directory; the driver keeps only `narrow_columns` of each
item (id, subset, labels, candidate counts and text lengths), and reads rows back one range at a time:
- shard content hashes (rmorch.orchestrator.plan.units), one shard after the other;
- each unit's rows when it is submitted: they travel to the replica with the task through Ray's object store
  (any node can read them there) and are freed when the task is done (rmorch.orchestrator.schedule.scheduler);
- the store's `items/<suite>.parquet` is a copy of the file (rmorch.orchestrator.store.results.write_items_file).

`scoring_view` is the same idea for the report: an item table without its texts (prompt, context and candidate
texts dropped; `n_candidates` and `candidate_chars` instead), which every metric reads (rmorch.core.schema
`candidate_counts`, rmorch.orchestrator.report.stats.length_bias).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rmorch.core.schema import ITEM_SCHEMA, SCORING_SCHEMA

ROW_GROUP_ROWS = 2048  # items per Parquet row group: the grain of every read (a unit's rows decode 1-2 groups)
CACHED_GROUP_BYTES = 32 << 20  # decoded row groups an ItemFile keeps (least recently used out): a small suite is
# decoded once however many units read it; a large one stays bounded in memory
SPOOL_PREFIX = "rmorch-items-"  # + host-pid-: the temporary directories of item files


def spool_directory() -> tempfile.TemporaryDirectory:
    """A new temporary directory for item files (a context manager; removed when it ends, or with the object).
    Directories left by a driver of this host that was killed (its process is gone) are removed first."""
    _remove_orphans()
    return tempfile.TemporaryDirectory(prefix=f"{_spool_tag()}{os.getpid()}-")


def _spool_tag() -> str:
    return f"{SPOOL_PREFIX}{socket.gethostname().replace('-', '_')}-"


def _remove_orphans() -> None:
    base, tag = tempfile.gettempdir(), _spool_tag()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        pid = name[len(tag):].split("-", 1)[0] if name.startswith(tag) else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class ItemFile:
    """A suite's canonical item table in a local Parquet file, read back by row ranges."""

    def __init__(self, path: str):
        self.path = path
        self._file: pq.ParquetFile | None = None
        self._groups: OrderedDict[int, pa.Table] = OrderedDict()  # decoded row groups, most recently used last
        self._cached_bytes = 0
        meta = pq.read_metadata(path)
        self.num_rows = meta.num_rows
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])  # first row of each group, and end

    @classmethod
    def write(cls, path: str, batches: Iterable[pa.Table]) -> ItemFile:
        """Write `batches` (item tables) to `path` as one Parquet file (as the store writes items files)."""
        with pq.ParquetWriter(path, ITEM_SCHEMA, compression="zstd") as writer:
            for batch in batches:
                writer.write_table(batch.cast(ITEM_SCHEMA), row_group_size=ROW_GROUP_ROWS)
        return cls(path)

    def _parquet(self) -> pq.ParquetFile:
        if self._file is None:
            self._file = pq.ParquetFile(self.path)
        return self._file

    def rows(self, start: int, stop: int) -> pa.Table:
        """Rows [start, stop) as one table (only the row groups that hold them are read)."""
        stop = min(stop, self.num_rows)
        if start >= stop:
            return ITEM_SCHEMA.empty_table()
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left"))  # exclusive
        part = pa.concat_tables([self._group(i) for i in range(first, last)])
        return part.slice(start - int(self._starts[first]), stop - start).combine_chunks()

    def _group(self, i: int) -> pa.Table:
        """Row group `i`, decoded (from the cache when it holds it)."""
        table = self._groups.get(i)
        if table is not None:
            self._groups.move_to_end(i)
            return table
        table = self._parquet().read_row_group(i)
        self._groups[i] = table
        self._cached_bytes += table.nbytes
        while self._cached_bytes > CACHED_GROUP_BYTES and len(self._groups) > 1:
            _, old = self._groups.popitem(last=False)
            self._cached_bytes -= old.nbytes
        return table

    def batches(self) -> Iterator[pa.Table]:
        """The whole table, one row group at a time."""
        pf = self._parquet()
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i)

    def slices(self, size: int) -> Iterator[tuple[int, pa.Table]]:
        """(start, rows [start, start + size)) for consecutive ranges of `size` rows, reading each group once."""
        buffered: list[pa.Table] = []
        have = 0
        start = 0
        for batch in self.batches():
            buffered.append(batch)
            have += batch.num_rows
            while have >= size:
                table = pa.concat_tables(buffered)
                yield start, table.slice(0, size).combine_chunks()
                rest = table.slice(size)
                buffered, have, start = [rest], rest.num_rows, start + size
        if have:
            yield start, pa.concat_tables(buffered).combine_chunks()

    def take(self, rows: list[int], path: str) -> ItemFile:
        """A new file at `path` of the given rows (ascending), in that order."""
        wanted = np.asarray(rows, dtype=np.int64)

        def picked() -> Iterator[pa.Table]:
            for i, batch in enumerate(self.batches()):
                lo, hi = self._starts[i], self._starts[i + 1]
                local = wanted[(wanted >= lo) & (wanted < hi)] - lo
                if local.size:
                    yield batch.take(pa.array(local))

        return ItemFile.write(path, picked())

    def read(self) -> pa.Table:
        """The whole table in memory: for tests and small tools; a sweep never needs it."""
        return pq.read_table(self.path).combine_chunks()

    def remove(self) -> None:
        self._file = None
        self._groups.clear()
        self._cached_bytes = 0
        if os.path.exists(self.path):
            os.remove(self.path)


def item_rows(items: ItemFile | pa.Table, start: int, stop: int) -> pa.Table:
    """Rows [start, stop) of a suite's item file (or of an in-memory item table)."""
    if isinstance(items, ItemFile):
        return items.rows(start, stop)
    return items.slice(start, stop - start)


def narrow_columns(items: pa.Table) -> pa.Table:
    """What the driver keeps of each item while a sweep plans and runs: id, subset, candidate count, and the
    characters a model reads (prompt once per candidate, for unit costs)."""
    prompt = items.column("prompt").combine_chunks()
    cands = items.column("candidates").combine_chunks()
    prompt_chars = _list_sums(prompt, pc.struct_field(prompt.flatten(), "content"))
    cand_chars = _list_sums(cands, cands.flatten())
    n_cands = pc.list_value_length(cands).to_numpy(zero_copy_only=False)
    return pa.table({
        "item_id": items.column("item_id"),
        "subset": items.column("subset"),
        "n_candidates": pa.array(n_cands, pa.int32()),
        "chars": pa.array((cand_chars + prompt_chars * n_cands).astype(float), pa.float64()),
    })


def scoring_view(items: pa.Table) -> pa.Table:
    """The item table without its texts (SCORING_SCHEMA): candidate counts and lengths instead of candidates."""
    cands = items.column("candidates").combine_chunks()
    offsets = pc.subtract(cands.offsets, cands.offsets[0])  # a sliced array's offsets need not start at 0
    chars = pa.ListArray.from_arrays(offsets, pc.utf8_length(cands.flatten()).cast(pa.int32()))
    keep = [f.name for f in SCORING_SCHEMA if f.name in items.column_names]
    out = items.select(keep)
    out = out.append_column("n_candidates", pc.list_value_length(cands).cast(pa.int32()))
    out = out.append_column("candidate_chars", chars)
    return out.select(SCORING_SCHEMA.names).cast(SCORING_SCHEMA)


def read_scoring_view(source: pa.NativeFile | str) -> pa.Table:
    """`scoring_view` of a Parquet items file, computed one row group at a time (texts are never all in memory)."""
    pf = pq.ParquetFile(source)
    present = set(pf.schema_arrow.names)
    columns = [c for c in (*SCORING_SCHEMA.names, "candidates") if c in present]
    parts = [scoring_view(pf.read_row_group(i, columns=columns)) for i in range(pf.num_row_groups)]
    return pa.concat_tables(parts).combine_chunks() if parts else SCORING_SCHEMA.empty_table()


def _list_sums(lists: pa.ListArray, texts: pa.Array) -> np.ndarray:
    """Per list, the total characters of its texts (computed in Arrow; nulls count 0)."""
    lengths = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = lists.offsets.to_numpy() - lists.offsets[0].as_py()
    total = np.concatenate([[0], np.cumsum(lengths)])
    return total[offsets[1:]] - total[offsets[:-1]]
