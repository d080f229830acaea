"""Faults a real cluster has, injected into the real pipeline (`pytest -m faults`; also part of `make test`).

On a multi-node `ray.cluster_utils.Cluster` (a head without GPUs and two worker nodes with one logical GPU each):
a worker node removed mid-sweep, a replica process killed mid-shard (once: retried; always: bounded retries, then
error rows), a poison item, and corrupt or truncated files in the store. Then the driver itself killed (SIGKILL on
its process group) and resumed with another number of GPUs, on a local directory and on an S3-compatible object
store. The misbehaving model is the `test-faulty` test aid (tests/fault_kinds.py): `length` scores plus injected
delays, raising items and process crashes, so every run can be checked against exact expected scores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

import tests.fault_kinds  # noqa: F401  (registers the test-faulty kind)
from rmorch.orchestrator.plan.units import load_suite
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.status import read_status
from rmorch.orchestrator.sweep import SweepResult, run_sweep
from tests.fault_kinds import crashes_so_far
from tests.s3_server import s3_bucket

pytestmark = pytest.mark.faults

REPO = Path(__file__).resolve().parent.parent
LIMIT = 2  # items per RewardBench subset: 46 items, 92 scores
SHARD = 2  # items per unit: 23 units


def _doc(out: str, data: Path, **model: Any) -> dict[str, Any]:
    timeout = {k: model.pop(k) for k in ("unit_timeout_s", "load_timeout_s") if k in model}
    return {"seed": 1, "out": out, "shard_size": SHARD, "max_retries": model.pop("max_retries", 2), "resamples": 0,
            **timeout,
            "suites": [{"name": "rewardbench", "data": str(data), "limit_per_subset": LIMIT}],
            "models": [{"name": "faulty", "kind": "test-faulty", "num_gpus": 1, "replicas": 2, **model}]}


def _sweep(out: str, data: Path, **model: Any) -> SweepResult:
    return run_sweep(spec_from_dict(_doc(out, data, **model)))


@pytest.fixture(scope="module")
def items(rewardbench_file: Path) -> pa.Table:
    spec = spec_from_dict(_doc("unused", rewardbench_file.parent))
    return load_suite(spec.suites[0], spec.seed).items


@pytest.fixture(scope="module")
def expected(items: pa.Table) -> dict[tuple[str, int], float]:
    """The exact fault-free scores: the length baseline's, per (item, candidate)."""
    return {(r["item_id"], c): float(len(text)) for r in items.select(["item_id", "candidates"]).to_pylist()
            for c, text in enumerate(r["candidates"])}


def _rows(out: str) -> list[dict[str, Any]]:
    store = ResultStore(out)
    rows = store.read_results(list(store.manifest())).to_pylist()
    assert store.problems == []
    return rows


def _scores(out: str) -> dict[tuple[str, int], float | None]:
    rows = _rows(out)
    keyed = {(r["item_id"], r["candidate"]): r["score"] for r in rows}
    assert len(keyed) == len(rows), "an item was scored twice"
    return keyed


def _unit_of(items: pa.Table, shard: int) -> list[str]:
    return items.column("item_id").to_pylist()[shard * SHARD:(shard + 1) * SHARD]


def _when(out: str, n_units: int, action, timeout: float = 120.0) -> threading.Thread:
    """Run `action()` in a thread as soon as `n_units` manifest entries are in the store."""

    def watch() -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(ResultStore(out).listing("manifest")) >= n_units:
                action()
                return
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


# ---- on a multi-node cluster ------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    # A lost node is declared dead after 2 missed health checks 0.5 s apart (Ray's default takes about 30 s).
    fast_death = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                  "health_check_failure_threshold": 2}
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False,
                                                      "_system_config": fast_death})
    c.workers = [c.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="class")
def fault_free(cluster, rewardbench_file, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("fault-free") / "out")
    result = _sweep(out, rewardbench_file.parent)
    assert result.ok and result.stats.error_rows == 0 and len(result.stats.computed) == 23
    return out


class TestOnCluster:
    def test_worker_node_removed_mid_sweep(self, cluster, fault_free, expected, rewardbench_file, tmp_path):
        out = str(tmp_path / "out")
        victim = cluster.workers.pop()
        watcher = _when(out, 6, lambda: cluster.remove_node(victim, allow_graceful=False))
        result = _sweep(out, rewardbench_file.parent, delay_s=0.4)
        watcher.join()
        cluster.workers.append(cluster.add_node(num_cpus=2, num_gpus=1))  # the next tests get two workers again
        cluster.wait_for_nodes()

        assert result.ok and result.stats.retries >= 1  # the lost node's in-flight units ran again elsewhere
        assert _scores(out) == expected  # nothing lost, nothing duplicated, nothing different
        assert _rows(out) == _rows(fault_free)  # row for row (unit keys, settings) a fault-free run
        assert ResultStore(out).done_keys() == ResultStore(fault_free).done_keys()

    def test_replica_killed_mid_shard_is_retried_on_a_new_replica(self, cluster, fault_free, items, rewardbench_file,
                                                                   tmp_path):
        out, crash_dir = str(tmp_path / "out"), str(tmp_path / "crashes")
        result = _sweep(out, rewardbench_file.parent, crash_on=_unit_of(items, 5)[:1], crash_times=1,
                        crash_dir=crash_dir, replicas=1)
        assert crashes_so_far(crash_dir) == 1
        assert result.ok and result.stats.retries >= 1 and result.stats.error_rows == 0
        assert result.stats.loads["faulty"] == 2  # the one replica, then a new one for the one that died
        assert _rows(out) == _rows(fault_free)

    def test_dead_engine_replaces_the_replica_instead_of_writing_error_rows(self, cluster, fault_free, items,
                                                                            rewardbench_file, tmp_path):
        # the model raises vLLM's EngineDeadError once: every request of the unit would fail alike, so the worker
        # does not bisect it into error rows; the replica is replaced and the unit retried
        out, crash_dir = str(tmp_path / "out"), str(tmp_path / "faults")
        result = _sweep(out, rewardbench_file.parent, dead_on=_unit_of(items, 5)[:1], crash_dir=crash_dir,
                        replicas=1)
        assert crashes_so_far(crash_dir, "dead") == 1
        assert result.ok and result.stats.error_rows == 0 and result.stats.retries == 1
        assert result.stats.loads["faulty"] == 2
        assert [r.split(":")[0] for r in result.stats.replaced["faulty"]] == ["engine died"]
        assert "EngineDeadError" in result.stats.replaced["faulty"][0]
        assert _rows(out) == _rows(fault_free)
        run = json.loads((Path(out) / "run.json").read_text())
        assert run["last_run"]["replaced"] == {"faulty": result.stats.replaced["faulty"]}
        assert read_status(out).replaced == run["last_run"]["replaced"]  # what `rmorch status` shows

    def test_hung_unit_times_out_and_is_retried_on_a_new_replica(self, cluster, fault_free, items, rewardbench_file,
                                                                tmp_path):
        out, crash_dir = str(tmp_path / "out"), str(tmp_path / "faults")
        t0 = time.monotonic()
        result = _sweep(out, rewardbench_file.parent, hang_on=_unit_of(items, 5)[:1], crash_dir=crash_dir,
                        replicas=1, unit_timeout_s=3)
        assert crashes_so_far(crash_dir, "hang") == 1
        assert result.ok and result.stats.error_rows == 0 and result.stats.retries == 1
        assert result.stats.loads["faulty"] == 2
        assert result.stats.replaced["faulty"] == ["unit timed out after 3s (unit_timeout_s)"]
        assert _rows(out) == _rows(fault_free)
        assert time.monotonic() - t0 < 60  # not waiting on the hung replica

    def test_hung_load_times_out_and_a_new_replica_loads(self, cluster, fault_free, rewardbench_file, tmp_path):
        """A load that never ends (a stalled download, an engine start that hangs): after `load_timeout_s` the
        replica is killed and a new one started, as for a replica that died starting."""
        out, crash_dir = str(tmp_path / "out"), str(tmp_path / "faults")
        t0 = time.monotonic()
        result = _sweep(out, rewardbench_file.parent, hang_load_times=1, crash_dir=crash_dir, replicas=1,
                        load_timeout_s=3)
        assert crashes_so_far(crash_dir, "hangload") == 1
        assert result.ok and result.stats.error_rows == 0 and result.stats.retries == 1
        assert result.stats.loads["faulty"] == 1  # the hung one never finished loading
        assert result.stats.replaced["faulty"] == [
            "load timed out: not loaded 3s after it was requested (load_timeout_s)"]
        assert _rows(out) == _rows(fault_free)
        assert time.monotonic() - t0 < 60  # not waiting on the hung load

    def test_replica_that_always_dies_ends_in_error_rows_after_bounded_retries(self, cluster, items, expected,
                                                                              rewardbench_file, tmp_path):
        out, crash_dir = str(tmp_path / "out"), str(tmp_path / "crashes")
        doomed = _unit_of(items, 7)
        result = _sweep(out, rewardbench_file.parent, crash_on=doomed[:1], crash_times=99, crash_dir=crash_dir,
                        max_retries=1, replicas=1)
        assert crashes_so_far(crash_dir) == 2  # the first attempt and max_retries = 1 retry, then no more
        rows = _rows(out)
        errors = [r for r in rows if r["error"] is not None]
        assert sorted({r["item_id"] for r in errors}) == sorted(doomed)  # every request of that unit, no others
        assert all("unit failed 2 times" in r["error"] and r["score"] is None for r in errors)
        assert len(errors) == result.stats.error_rows == 2 * SHARD
        assert {(r["item_id"], r["candidate"]): r["score"] for r in rows if r["error"] is None} == {
            k: v for k, v in expected.items() if k[0] not in doomed}
        entry = next(e for e in result.leaderboard if e.model == "faulty")
        assert entry.n_errors == SHARD and entry.n_items == 46

    def test_poison_item_is_one_error_and_the_rest_of_its_shard_scores(self, cluster, items, expected,
                                                                       rewardbench_file, tmp_path):
        out = str(tmp_path / "out")
        poison = _unit_of(items, 3)[1]
        result = _sweep(out, rewardbench_file.parent, raise_on=[poison])
        rows = _rows(out)
        errors = [r for r in rows if r["error"] is not None]
        assert {r["item_id"] for r in errors} == {poison} and len(errors) == 2  # its two candidates' requests
        assert all("ValueError: poison item" in r["error"] for r in errors)
        assert {(r["item_id"], r["candidate"]): r["score"] for r in rows if r["error"] is None} == {
            k: v for k, v in expected.items() if k[0] != poison}  # the rest of the shard and the sweep scored
        assert result.stats.retries == 0 and result.stats.error_rows == 2

    def test_corrupt_files_are_detected_recomputed_and_never_read(self, cluster, fault_free, expected,
                                                                  rewardbench_file, tmp_path, caplog):
        from rmorch.orchestrator.report.compute import build_report

        out = str(tmp_path / "out")
        shutil.copytree(fault_free, out)
        store = ResultStore(out)
        entries = sorted(store.manifest(), key=lambda e: e.key)
        truncated, rotten, torn = entries[0], entries[1], entries[2]
        path = Path(out)
        data = (path / truncated.file).read_bytes()
        (path / truncated.file).write_bytes(data[: len(data) // 3])  # a crash during a write
        data = bytearray((path / rotten.file).read_bytes())
        data[len(data) // 2:len(data) // 2 + 8] = b"\xff" * 8  # same size, other bytes
        (path / rotten.file).write_bytes(bytes(data))
        (path / "manifest" / f"{torn.key}.json").write_text('{"key": "')
        before = build_report([out], resamples=0).entries[0]  # the report does not read them as data
        assert before.n_missing == 3 * SHARD and before.n_items == 46

        (path / "items" / "rewardbench.parquet").write_bytes(b"PAR1garbage")
        with caplog.at_level("WARNING"):
            result = _sweep(out, rewardbench_file.parent)
        assert sorted(result.stats.computed) == sorted(e.key for e in (truncated, rotten, torn))
        run = json.loads((path / "run.json").read_text())
        for e in (truncated, rotten):
            assert any(e.file in p for p in run["store_problems"])
        assert any(f"manifest/{torn.key}.json" in p for p in run["store_problems"])
        assert any(truncated.file in r.getMessage() for r in caplog.records)
        assert _scores(out) == expected and _rows(out) == _rows(fault_free)
        assert result.leaderboard[0].n_missing == 0


# ---- the driver killed ------------------------------------------------------------------------------------------


def _spec_file(tmp: Path, out: str, data: Path) -> Path:
    spec = tmp / f"spec-{abs(hash(out))}.yaml"
    doc = _doc(out, data, delay_s=0.3)
    doc["models"].append({"name": "length"})
    spec.write_text(yaml.safe_dump(doc))
    return spec


def _rmorch(*args: str) -> list[str]:
    """The rmorch CLI with the test-faulty kind registered (a plugin the driver and its Ray workers import)."""
    return [sys.executable, "-c", "import tests.fault_kinds; from rmorch.orchestrator.cli import main; main()", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def _kill_mid_sweep(spec: Path, out: str, gpus: int) -> set[str]:
    """Start `rmorch sweep` and SIGKILL its whole process group (driver and its Ray) once some units landed;
    return the keys the store then holds, verified."""
    proc = subprocess.Popen(_rmorch("sweep", str(spec), "--quiet", "--num-cpus", "2", "--num-gpus", str(gpus)),
                            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            if len(ResultStore(out).listing("manifest")) >= 8:
                break
            assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()!r:.2000}"
            time.sleep(0.25)  # gently: on S3 every look is a LIST request to the (in-process) server
        else:
            pytest.fail("no progress within 180 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return ResultStore(out).done_keys()


def _status(out: str) -> dict[str, Any]:
    done = subprocess.run(_rmorch("status", out, "--json"), cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _kill_then_resume(tmp: Path, out: str, data: Path) -> dict[str, Any]:
    spec = _spec_file(tmp, out, data)
    finished = _kill_mid_sweep(spec, out, gpus=2)
    store = ResultStore(out)
    hashes = {e.key: e.sha256 for e in store.manifest() if e.key in finished}
    status = _status(out)
    assert not status["finished"] and status["units_done"] == len(finished) and status["units_planned"] == 46

    resumed = subprocess.run(_rmorch("sweep", str(spec), "--quiet", "--num-cpus", "2", "--num-gpus", "1"),
                             cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr
    run = ResultStore(out).read_json("run.json")
    plan = ResultStore(out).read_json("plan.json")
    planned = {k for suites in plan["units"].values() for keys in suites.values() for k in keys}
    return {"finished_before": finished, "hashes": hashes, "run": run, "planned": planned,
            "status": _status(out), "leaderboard": ResultStore(out).read_json("leaderboard.json")}


@pytest.fixture(scope="module")
def local_resumed(tmp_path_factory, rewardbench_file) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("killed")
    out = str(tmp / "out")
    return {"out": out, **_kill_then_resume(tmp, out, rewardbench_file.parent)}


def _check_resumed(r: dict[str, Any], out: str, expected: dict[tuple[str, int], float]) -> None:
    last = r["run"]["last_run"]
    assert last["units_skipped"] == len(r["finished_before"]) > 0
    assert last["units_computed"] == len(r["planned"]) - len(r["finished_before"])  # only the unfinished ones
    store = ResultStore(out)
    after = {e.key: e.sha256 for e in store.manifest()}
    assert set(after) == r["planned"]
    assert all(after[k] == h for k, h in r["hashes"].items())  # finished units were not written again
    rows = _rows(out)
    for model in ("faulty", "length"):
        mine = [x for x in rows if x["model"] == model]
        keyed = {(x["item_id"], x["candidate"]): x["score"] for x in mine}
        assert len(keyed) == len(mine) and keyed == expected, model  # nothing lost or duplicated
    assert r["status"]["finished"] and r["status"]["units_done"] == r["status"]["units_planned"] == 46
    assert r["status"]["error_rows"] == 0


def test_killed_driver_resumes_with_another_number_of_gpus(local_resumed, expected):
    _check_resumed(local_resumed, local_resumed["out"], expected)
    gpus = {rep.get("gpus") for rep in local_resumed["run"]["last_run"]["replicas"] if rep["model"] == "faulty"}
    assert local_resumed["run"]["hardware"]["cluster"]["gpus"] == 1 and gpus == {1.0}


def test_object_store_sweep_killed_and_resumed_matches_a_local_run(local_resumed, expected, tmp_path,
                                                                   rewardbench_file):
    with s3_bucket() as bucket:
        out = f"{bucket}/runs/nightly"
        r = _kill_then_resume(tmp_path, out, rewardbench_file.parent)
        _check_resumed(r, out, expected)
        assert r["leaderboard"] == local_resumed["leaderboard"]
        store = ResultStore(out)
        for rel in ("report.html", "leaderboard.csv", "spec.yaml", "items/rewardbench.parquet", "plan.json"):
            assert store.exists(rel), rel
        assert b"faulty" in store.read_bytes("report.html")
        from rmorch.orchestrator.report.export import export_reward_bench

        written = export_reward_bench(out)  # the RewardBench layout, written into the bucket too
        assert written and all(w.startswith(f"{out}/export/reward-bench/") for w in written)
        assert store.listing("export/reward-bench")
        assert not Path(out).exists() and not (REPO / "s3:").exists()  # nothing went to a local path by mistake
