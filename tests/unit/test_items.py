"""The driver's item files (rmorch.orchestrator.plan.items): row ranges, shards, samples and the text-free scoring view give
exactly what the whole in-memory table gives."""

from __future__ import annotations

import gc
import os

import pyarrow as pa
import pytest

from rmorch.core.schema import SCORING_SCHEMA, candidate_counts, items_table
from rmorch.orchestrator.plan import items as items_mod
from rmorch.orchestrator.plan.items import ItemFile, narrow_columns, scoring_view
from rmorch.orchestrator.report.stats import _pair_lengths
from rmorch.orchestrator.store.results import ResultStore

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_items.py


def _table(n: int) -> pa.Table:
    return items_table({
        "suite": "s", "subset": f"sub{i % 3}", "item_id": f"id{i}",
        "prompt": [{"role": "user", "content": "q" * (i % 7 + 1)}],
        "candidates": ["é" * (i % 5 + 1), "b" * (i % 3 + 2)] + (["c"] if i % 4 == 0 else []),
        "correct": [i % 2], "context": None if i % 2 else [{"kind": "text", "content": "ctx"}],
        "meta": {"i": i},
    } for i in range(n))


@pytest.fixture
def small_groups(monkeypatch):
    monkeypatch.setattr(items_mod, "ROW_GROUP_ROWS", 7)  # many row groups: every read crosses boundaries


def test_rows_slices_and_take_equal_the_table(tmp_path, small_groups) -> None:
    table = _table(50)
    f = ItemFile.write(str(tmp_path / "a.parquet"), [table.slice(0, 20), table.slice(20)])
    assert f.num_rows == 50 and f.read().equals(table)
    for start, stop in [(0, 50), (0, 1), (6, 8), (7, 14), (13, 41), (49, 50), (45, 60), (50, 50)]:
        assert f.rows(start, stop).equals(table.slice(start, max(0, min(stop, 50) - start))), (start, stop)
    got = list(f.slices(16))
    assert [s for s, _ in got] == [0, 16, 32, 48]
    assert pa.concat_tables([t for _, t in got]).equals(table) and [t.num_rows for _, t in got] == [16, 16, 16, 2]
    keep = [0, 3, 7, 8, 21, 49]
    assert f.take(keep, str(tmp_path / "b.parquet")).read().equals(table.take(keep))


def test_rows_read_through_the_bounded_group_cache(tmp_path, small_groups, monkeypatch) -> None:
    table = _table(50)
    f = ItemFile.write(str(tmp_path / "a.parquet"), [table])
    monkeypatch.setattr(items_mod, "CACHED_GROUP_BYTES", 1)  # at most one group kept: every other read evicts
    for start, stop in [(13, 41), (0, 3), (13, 41), (44, 50), (2, 9)]:
        assert f.rows(start, stop).equals(table.slice(start, stop - start)), (start, stop)
        assert len(f._groups) == 1
    monkeypatch.setattr(items_mod, "CACHED_GROUP_BYTES", 1 << 30)  # room for all: decoded once, then reused
    for start, stop in [(0, 50), (13, 41), (7, 8)]:
        assert f.rows(start, stop).equals(table.slice(start, stop - start))
    assert len(f._groups) == 8


def test_scoring_view_has_counts_and_lengths_without_texts(tmp_path, small_groups) -> None:
    table = _table(30)
    view = scoring_view(table.slice(5))  # a slice: offsets that do not start at 0
    assert view.schema == SCORING_SCHEMA
    assert not {"prompt", "candidates", "context"} & set(view.column_names)
    assert candidate_counts(view) == candidate_counts(table.slice(5))
    assert view.column("candidate_chars").to_pylist() == [
        [len(c) for c in r["candidates"]] for r in table.slice(5).to_pylist()]
    assert (_pair_lengths(view) == _pair_lengths(table.slice(5))).all()
    store = ResultStore(str(tmp_path / "out"))
    store.write_items_file("my/suite", ItemFile.write(str(tmp_path / "a.parquet"), [table]).path)
    assert store.read_items("my/suite").equals(table)
    assert store.read_scoring_items("my/suite").equals(scoring_view(table))


def test_narrow_columns() -> None:
    table = _table(9)
    narrow = narrow_columns(table)
    assert narrow.column("n_candidates").to_pylist() == candidate_counts(table)
    rows = table.to_pylist()
    assert narrow.column("chars").to_pylist() == [
        float(sum(map(len, r["candidates"])) + len(r["prompt"][0]["content"]) * len(r["candidates"])) for r in rows]


def test_load_suite_streams_to_a_file_equal_to_the_loaded_table(rewardbench_file, small_groups) -> None:
    from rmorch.orchestrator.plan.units import load_suite
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.suites import get_suite_class

    spec = spec_from_dict({"out": "unused", "models": ["length"], "suites": [
        {"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 3,
         "subsets": ["alpacaeval-easy", "hep-go", "math-prm"]}]})
    ls = load_suite(spec.suites[0], spec.seed)
    suite = get_suite_class("rewardbench")()
    whole = suite.load(str(rewardbench_file.parent))
    whole = whole.filter(pa.array([s in ("alpacaeval-easy", "hep-go", "math-prm")
                                   for s in whole.column("subset").to_pylist()]))
    expected = suite.sample(whole, 3, spec.seed)
    assert ls.items.equals(expected) and ls.num_rows == 9
    assert ls.index.equals(narrow_columns(expected))
    assert ls.rows(2, 7).equals(expected.slice(2, 5))
    directory = os.path.dirname(ls.file.path)
    del ls
    gc.collect()
    assert not os.path.exists(directory)  # a suite loaded outside a sweep cleans up its own files
