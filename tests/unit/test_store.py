"""The result store on every kind of filesystem it supports: a local directory (the default), fsspec's memory://
and a real S3-compatible server (moto, standing in for a cloud bucket). Writes are whole; a unit is finished only
when its manifest entry and its results file agree; anything else is reported by file name and never read as data."""

from __future__ import annotations

import logging
import uuid

import pyarrow as pa
import pytest

from rmorch.core.errors import UserError
from rmorch.core.schema import results_table
from rmorch.orchestrator.store.results import CorruptFile, ManifestEntry, ResultStore, _parquet_bytes
from tests.s3_server import s3_bucket


@pytest.fixture(scope="module")
def s3_root():
    with s3_bucket() as root:
        yield root


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path) -> ResultStore:
    unique = uuid.uuid4().hex[:8]
    if request.param == "local":
        return ResultStore(str(tmp_path / "out"))
    if request.param == "memory":
        return ResultStore(f"memory://rmorch-tests/{unique}")
    return ResultStore(f"{request.getfixturevalue('s3_root')}/runs/{unique}")


def _rows(key: str, n: int) -> pa.Table:
    return results_table([{"unit_key": key, "model": "m/1", "suite": "s", "subset": "a", "item_id": f"i{i}",
                           "candidate": 0, "score": float(i), "settings_hash": "h"} for i in range(n)])


def _unit(store: ResultStore, key: str, n: int = 5) -> ManifestEntry:
    entry = ManifestEntry(key, "m/1", "s", 0, ResultStore.unit_file("m/1", "s", key), n, 0, 0.1)
    return store.write_unit(entry, _rows(key, n))


def test_round_trip(store: ResultStore) -> None:
    a, b = _unit(store, "k1", 5), _unit(store, "k2", 3)
    assert a.size and a.sha256 and a.file == "results/m%2F1/s/k1.parquet"
    assert [e.key for e in store.manifest()] == ["k1", "k2"]
    assert store.done_keys() == {"k1", "k2"}
    assert store.read_results([a, b]).column("item_id").to_pylist() == [f"i{i}" for i in range(5)] + ["i0", "i1", "i2"]
    store.write_json("run.json", {"x": [1, "é"]})
    assert store.read_json("run.json") == {"x": [1, "é"]} and store.exists("run.json")
    assert not store.exists("nope.json")
    store.write_atomic("plots/p.png", lambda path: open(path, "wb").write(b"\x89PNG"))  # noqa: SIM115
    assert store.read_bytes("plots/p.png") == b"\x89PNG"
    assert set(store.listing("")) >= {"run.json", "plots/p.png", a.file, "manifest/k1.json"}
    assert store.path("run.json").endswith("/run.json") and store.root in store.path("run.json")
    assert store.problems == []


def test_truncated_results_file_is_reported_and_never_read(store: ResultStore, caplog) -> None:
    good, bad = _unit(store, "good"), _unit(store, "bad")
    data = store.read_bytes(bad.file)
    store.write_bytes(bad.file, data[: len(data) // 2])  # what a crash during a non-atomic write leaves
    with caplog.at_level(logging.WARNING, logger="rmorch.orchestrator.store.results"):
        assert [e.key for e in store.manifest()] == ["good"]
    assert store.done_keys() == {"good"}
    assert store.read_results([good, bad]).num_rows == good.n_rows  # asked for anyway: left out, not read
    assert any(bad.file in p and "truncated" in p for p in store.problems)
    assert any(bad.file in r.getMessage() for r in caplog.records)


def test_corrupted_results_file_of_the_same_size(store: ResultStore) -> None:
    good, bad = _unit(store, "good"), _unit(store, "bad")
    data = bytearray(store.read_bytes(bad.file))
    mid = len(data) // 2
    data[mid:mid + 16] = bytes(16)  # bit rot: the size is right, the content is not
    store.write_bytes(bad.file, bytes(data))
    assert {e.key for e in store.manifest()} == {"good", "bad"}  # the cheap listing check cannot see it ...
    assert store.done_keys() == {"good"}  # ... the check before a unit is skipped does
    assert store.read_results([good, bad]).num_rows == good.n_rows
    assert any(bad.file in p and "corrupted" in p for p in store.problems)


def test_row_count_differs_from_an_older_entry(store: ResultStore) -> None:
    """Entries of older versions carry no size or hash: the file must still hold the recorded rows."""
    entry = ManifestEntry("old", "m/1", "s", 0, ResultStore.unit_file("m/1", "s", "old"), 7, 0, 0.1)
    store.write_bytes(entry.file, _parquet_bytes(_rows("old", 4)))
    store.write_json("manifest/old.json", {k: v for k, v in entry.__dict__.items() if k not in ("size", "sha256")})
    assert store.done_keys() == set()
    assert any("4 rows" in p and "records 7" in p for p in store.problems)
    store.write_bytes(entry.file, _parquet_bytes(_rows("old", 7)))
    assert store.done_keys() == {"old"}


def test_unreadable_manifest_entries_are_reported(store: ResultStore) -> None:
    _unit(store, "good")
    store.write_text("manifest/torn.json", '{"key": "torn", "mod')
    store.write_json("manifest/odd.json", {"key": "odd", "model": "m", "suite": "s", "shard": 0,
                                           "file": "../../elsewhere.parquet", "n_rows": 1, "n_errors": 0,
                                           "seconds": 0})
    assert store.done_keys() == {"good"}
    assert any("manifest/torn.json" in p for p in store.problems)
    assert any("manifest/odd.json" in p and "not under results/" in p for p in store.problems)


def test_results_without_an_entry_are_simply_unfinished(store: ResultStore) -> None:
    """A crash between the results file and its manifest entry: the unit is recomputed, nothing to report."""
    store.write_bytes(ResultStore.unit_file("m/1", "s", "k"), _parquet_bytes(_rows("k", 2)))
    assert store.done_keys() == set() and store.problems == []


def test_corrupt_items_file_names_the_file(store: ResultStore) -> None:
    items = pa.table({"item_id": ["a", "b"]})
    store.write_items("my/suite", items)
    assert store.read_items("my/suite").equals(items) and store.item_suites() == ["my/suite"]
    store.write_bytes(ResultStore.items_file("my/suite"), b"PAR1 not parquet")
    with pytest.raises(CorruptFile, match="items/my%2Fsuite.parquet.*rerun the sweep"):
        store.read_items("my/suite")


def test_local_write_is_all_or_nothing(tmp_path) -> None:
    store = ResultStore(str(tmp_path / "out"))
    store.write_text("a.txt", "first")

    def fails(path: str) -> None:
        open(path, "w").write("half")  # noqa: SIM115
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        store.write_atomic("a.txt", fails)
    assert store.read_text("a.txt") == "first"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.txt"]  # no temporary file left behind


def test_unknown_scheme_is_a_user_error() -> None:
    with pytest.raises(UserError, match="nosuchfs://x"):
        ResultStore("nosuchfs://x/y")


def test_status_needs_a_plan(tmp_path) -> None:
    from rmorch.orchestrator.store.status import read_status

    with pytest.raises(UserError, match="no plan.json"):
        read_status(str(tmp_path))


def _filled(root: str, rewardbench_file) -> ResultStore:
    """A finished sweep of the length baseline written into `root` without Ray: the real plan, the real worker
    (in-process) and the sweep's own metadata and plan writers."""
    from rmorch.actors.worker import ModelWorker, ShardTask
    from rmorch.orchestrator.plan.provenance import model_identities
    from rmorch.orchestrator.plan.units import load_suite, make_units
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.store.run_record import LastRun, write_run
    from rmorch.orchestrator.store.status import write_plan
    from rmorch.orchestrator.sweep import _run_metadata

    spec = spec_from_dict({"out": root, "shard_size": 16, "resamples": 0, "models": ["length"],
                           "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent),
                                       "limit_per_subset": 2}]})
    suites = [load_suite(s, spec.seed) for s in spec.suites]
    store = ResultStore(root)
    items = suites[0].items
    store.write_items("rewardbench", items)
    identities = model_identities(spec.models, spec.seed)
    run = _run_metadata(store, spec, suites, identities)
    units = make_units(spec, suites, {name: i.identity for name, i in identities.items()})
    write_plan(store, run.run_id, run.started, units)
    worker = ModelWorker(spec.models[0], spec.seed)
    for u in units:
        result = worker.score_shard(ShardTask(u.key, u.model, u.suite, u.start, u.stop, identity=u.identity),
                                    items.slice(u.start, u.stop - u.start))
        store.write_unit(ManifestEntry(u.key, u.model, u.suite, u.shard, ResultStore.unit_file(u.model, u.suite, u.key),
                                       result.table.num_rows, result.n_errors, result.seconds, identity=u.identity),
                         result.table)
    run.last_run = LastRun()
    write_run(store, run)
    return store


def test_reports_status_and_merges_on_uri_stores(rewardbench_file) -> None:
    from rmorch.orchestrator.report.compute import build_report
    from rmorch.orchestrator.report.render import write_report
    from rmorch.orchestrator.store.status import read_status

    unique = uuid.uuid4().hex[:8]
    a, b, merged = (f"memory://rmorch-tests/{unique}/{name}" for name in ("a", "b", "merged"))
    _filled(a, rewardbench_file)
    _filled(b, rewardbench_file)
    report = build_report([a], resamples=20)
    written = write_report(a, report)
    store = ResultStore(a)
    assert all(store.exists(rel) for rel in written) and "report.html" in written
    assert b"length" in store.read_bytes("report.html")
    assert store.read_json("leaderboard.json")[0]["n_items"] == 46

    status = read_status(a)
    assert status.finished and status.units_done == status.units_planned == 3 and status.error_rows == 0

    both = build_report([a, b], resamples=0)
    write_report(merged, both)
    assert sorted(ResultStore(merged).read_json("run.json")["merged_from"]) == [a, b]
    assert ResultStore(merged).exists("report.html")
    assert [e.score for e in build_report([merged], resamples=0).entries] == [e.score for e in both.entries]
