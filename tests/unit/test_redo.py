"""Error rows are redone (rmorch.orchestrator.plan.redo): a finished unit whose result holds error rows is planned
again for those rows only; its good rows are kept as they are and the unit ends as a fault-free run's. Checked in
process, without Ray: the planning decision, the real replica code (ModelWorker) scoring what the plan sends, the
score cache answering error rows, the merge, `rmorch status` and the `--keep-errors` flag. The kinds: the
`test-faulty` test aid (tests/fault_kinds.py: length scores, items that fail while a file exists, every request
scored logged), cached, and its twin `test-faulty-uncached`, never cached like length, random and published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner

from rmorch.actors import get_kind
from rmorch.actors.base import ScoreOutcome
from rmorch.actors.worker import ModelWorker, shard_requests
from rmorch.orchestrator.plan.items import item_rows
from rmorch.orchestrator.plan.redo import merge_redone, pending_units, write_result
from rmorch.orchestrator.plan.score_cache import ScoreCache
from rmorch.orchestrator.plan.units import LoadedSuite, WorkUnit, load_suite, make_units
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import LastRun, RunRecord, write_run
from rmorch.orchestrator.store.status import describe_state, read_status, write_plan
from tests.fault_kinds import KIND as FAULTY  # importing it registers the test-faulty kinds
from tests.fault_kinds import KIND_UNCACHED, scored_so_far

# The full-tier half (a real sweep on Ray): tests/test_redo.py

SHARD = 16  # 46 RewardBench items (2 per subset): 3 units per model


def _spec(out: Path, data: Path, flag: Path, logs: Path, flaky: list[str], **top: Any) -> SweepSpec:
    faults = {"flaky_on": flaky, "flaky_while": str(flag), "log_dir": str(logs)}
    return spec_from_dict({"seed": 0, "out": str(out), "shard_size": SHARD, "resamples": 0, **top,
                           "suites": [{"name": "rewardbench", "data": str(data), "limit_per_subset": 2}],
                           "models": [{"name": "faulty", "kind": FAULTY, **faults},
                                      {"name": "uncached", "kind": KIND_UNCACHED, **faults}]})


def _run(spec: SweepSpec, suite: LoadedSuite, units: list[WorkUnit]) -> list[WorkUnit]:
    """What a sweep does between planning and scheduling, then each unit left scored by an in-process replica (the
    scheduler's part, without Ray). Returns the units planned as pending."""
    store = ResultStore(spec.out)
    done = {e.key: e for e in store.manifest(verify=True)}
    pending = pending_units(units, done, store, spec.keep_errors)
    cache = ScoreCache.from_store(store, spec, pending)
    items = suite.items
    left = cache.resolve(spec, pending, {suite.name: items}, store)
    workers = {m.name: ModelWorker(m, spec.seed) for m in spec.models}
    for u in left:
        result = workers[u.model].score_shard(u.task(spec.seed), item_rows(items, u.start, u.stop), cache.known_for(u))
        write_result(store, u, result.table, result.n_errors, result.seconds)
    return pending


def _rows(out: Path) -> dict[str, list[dict[str, Any]]]:
    """Each unit's rows, by unit key."""
    store = ResultStore(str(out))
    rows = store.read_results(list(store.manifest())).to_pylist()
    assert store.problems == []
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_unit.setdefault(r["unit_key"], []).append(r)
    return by_unit


@pytest.fixture()
def first(tmp_path: Path, rewardbench_file: Path) -> dict[str, Any]:
    """A first run in which two items (in two units) fail for both models."""
    flag, logs = tmp_path / "flaky", tmp_path / "logs"
    flag.touch()
    probe = _spec(tmp_path / "out", rewardbench_file.parent, flag, logs, [])
    suite = load_suite(probe.suites[0], probe.seed)
    ids = suite.index.column("item_id").to_pylist()
    flaky = [ids[3], ids[SHARD + 7]]  # in units 0 and 1; unit 2 has none
    spec = _spec(tmp_path / "out", rewardbench_file.parent, flag, logs, flaky)
    units = make_units(spec, [suite])
    _run(spec, suite, units)
    return {"spec": spec, "suite": suite, "units": units, "flaky": flaky, "flag": flag, "logs": logs,
            "rows": _rows(tmp_path / "out"), "tmp": tmp_path, "data": rewardbench_file.parent}


def test_units_with_error_rows_are_planned_again_for_those_rows_only(first: dict[str, Any]) -> None:
    spec, units, rows = first["spec"], first["units"], first["rows"]
    errored = {k: [i for i, r in enumerate(unit_rows) if r["error"] is not None] for k, unit_rows in rows.items()}
    assert sum(len(v) for v in errored.values()) == 2 * 2 * 2  # 2 items x 2 candidates x 2 models
    store = ResultStore(spec.out)
    done = {e.key: e for e in store.manifest(verify=True)}
    assert len(done) == len(units) == 6
    pending = pending_units(units, done, store)
    assert sorted((u.model, u.shard) for u in pending) == [("faulty", 0), ("faulty", 1), ("uncached", 0),
                                                            ("uncached", 1)]
    for u in pending:
        assert u.requests == tuple(errored[u.key]) and u.n_requests == 2  # the failed item's two candidates
        whole = next(w for w in units if w.key == u.key)
        assert u.cost == pytest.approx(whole.cost * 2 / whole.n_requests)
    assert pending_units(units, done, store, keep_errors=True) == []  # error rows kept as final
    missing = {k: e for k, e in done.items() if k != pending[0].key}  # a unit without a result: planned whole
    assert next(u for u in pending_units(units, missing, store) if u.key == pending[0].key).requests is None


def test_a_rerun_redoes_only_the_error_rows_and_ends_as_a_fault_free_run(first: dict[str, Any]) -> None:
    spec, suite, units, tmp = first["spec"], first["suite"], first["units"], first["tmp"]
    before = scored_so_far(str(first["logs"]))
    first["flag"].unlink()  # the fault is gone
    _run(spec, suite, units)
    redone = scored_so_far(str(first["logs"]))[len(before):]
    assert sorted(redone) == sorted((m, i, c) for m in ("faulty", "uncached") for i in first["flaky"] for c in (0, 1))
    after = _rows(tmp / "out")
    assert set(after) == set(first["rows"]) == {u.key for u in units}  # the same unit keys
    for key, unit_rows in after.items():
        old = first["rows"][key]
        assert len(unit_rows) == len(old) and all(r["error"] is None for r in unit_rows)
        assert [r for r, o in zip(unit_rows, old) if o["error"] is None] == [o for o in old if o["error"] is None]
    assert all(e.n_errors == 0 for e in ResultStore(spec.out).manifest())

    fresh = _spec(tmp / "fresh", first["data"], first["flag"], tmp / "fresh-logs", first["flaky"])
    _run(fresh, suite, make_units(fresh, [suite]))
    assert _rows(tmp / "fresh") == after  # row for row what a run without the fault writes
    assert _run(spec, suite, units) == []  # nothing left to do


def test_the_score_cache_answers_error_rows_known_elsewhere(first: dict[str, Any]) -> None:
    spec, suite, units = first["spec"], first["suite"], first["units"]
    store = ResultStore(spec.out)
    pending = [u for u in pending_units(units, {e.key: e for e in store.manifest(verify=True)}, store)
               if u.model == "faulty"]
    cache = ScoreCache.from_store(store, spec, pending)
    model = next(m for m in spec.models if m.name == "faulty")
    kind = get_kind(model.kind)
    for u in pending:  # as if another suite had scored the same texts
        for r in shard_requests(item_rows(suite.items, u.start, u.stop), kind.presentation(model.config),
                                u.task(spec.seed)):
            cache.known["faulty"][kind.cache_key(model.config, r)] = ScoreOutcome(score=-1.0)
    assert cache.resolve(spec, pending, {suite.name: suite.items}, store) == []  # no replica needed
    assert cache.reused_requests == 2 * 2
    after = _rows(Path(spec.out))
    for u in pending:
        old, new = first["rows"][u.key], after[u.key]
        assert [r["score"] for r in new] == [-1.0 if o["error"] else o["score"] for o in old]
        assert [r["cached"] for r in new] == [o["error"] is not None or o["cached"] for o in old]


def test_merge_puts_the_redone_rows_in_their_places() -> None:
    earlier = pa.table({"item_id": ["a", "b", "c", "d"], "score": [1.0, None, 3.0, None],
                        "error": [None, "x", None, "y"]})
    redone = pa.table({"item_id": ["b", "d"], "score": [2.0, 4.0], "error": pa.array([None, None], pa.string())})
    merged = merge_redone(earlier, (1, 3), redone)
    assert merged.to_pydict() == {"item_id": ["a", "b", "c", "d"], "score": [1.0, 2.0, 3.0, 4.0],
                                  "error": [None] * 4}
    with pytest.raises(ValueError):
        merge_redone(earlier, (1, 2), redone)  # not the rows of these requests
    with pytest.raises(ValueError):
        merge_redone(earlier, (1,), redone)


def test_status_counts_units_with_error_rows_as_pending(first: dict[str, Any]) -> None:
    spec, units = first["spec"], first["units"]
    store = ResultStore(spec.out)
    write_plan(store, "r1", "now", units)
    write_run(store, RunRecord(run_id="r1", last_run=LastRun()))
    status = read_status(spec.out)
    assert status.units_done == status.units_planned == 6
    assert status.units_with_errors == status.units_pending == 4 and status.error_rows == 8
    text = describe_state(status)
    assert "4 units pending (4 with error rows to redo)" in text and "8 error rows" in text, text
    assert "--keep-errors" in text and not text.startswith("finished:")
    data = status.to_dict()
    assert (data["units_pending"], data["units_with_errors"], data["error_rows"]) == (4, 4, 8)
    assert sorted((p["model"], p["units_pending"], p["units_with_errors"]) for p in data["pairs"]) == [
        ("faulty", 2, 2), ("uncached", 2, 2)]


def test_keep_errors_is_a_spec_key_and_a_sweep_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rmorch.orchestrator.sweep as sweep_module
    from rmorch.orchestrator.cli import main
    from rmorch.orchestrator.schedule.scheduler import RunStats

    specs: list[SweepSpec] = []

    def fake_run_sweep(spec: SweepSpec, *args: Any, **kwargs: Any) -> sweep_module.SweepResult:
        specs.append(spec)
        return sweep_module.SweepResult(spec.out, [], RunStats(), 0, 0, 0.0)

    monkeypatch.setattr(sweep_module, "run_sweep", fake_run_sweep)
    base = ["sweep", "--suite", "rewardbench", "--model", "length", "--out", str(tmp_path / "o"), "--quiet"]
    for extra in ([], ["--keep-errors"]):
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 0, result.output
    assert [s.keep_errors for s in specs] == [False, True]
    assert specs[1].to_dict()["keep_errors"] is True
    doc = {"suites": [{"name": "rewardbench"}], "models": ["length"], "keep_errors": True}
    assert spec_from_dict(doc).keep_errors
