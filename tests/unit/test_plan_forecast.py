"""`rmorch plan` and the ETA of `rmorch status`, on outcomes known in advance: the policy simulated on small
clusters, what fits and what cannot run (GPUs on one node, GPU memory), what the store already holds, measured
rates replacing assumptions, and the progress of a running sweep. No Ray, no model loaded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rmorch.actors.worker import ModelWorker
from rmorch.orchestrator.plan.costs import params_from_name
from rmorch.orchestrator.plan.estimate import (
    LandedUnit,
    estimate_model,
    measured_rates,
    model_progress,
    sweep_eta,
)
from rmorch.orchestrator.plan.forecast import gpu_nodes, parse_nodes, plan_sweep, this_machine
from rmorch.orchestrator.plan.items import item_rows
from rmorch.orchestrator.plan.redo import write_result
from rmorch.orchestrator.plan.simulate import SimModel, simulate
from rmorch.orchestrator.plan.units import load_suite, make_units
from rmorch.orchestrator.schedule.placement import NodeFree
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import MeasuredRate, RunRecord, write_run
from rmorch.orchestrator.store.status import read_status, write_plan

SHARD = 16


def _nodes(*gpus: float) -> list[NodeFree]:
    return [NodeFree(f"n{i}", g, 8.0, g, 8.0) for i, g in enumerate(gpus)]


def test_simulated_models_in_parallel_and_in_turn() -> None:
    a = SimModel("a", 1.0, 1.0, 1, 5.0, ((1.0, 10.0), (1.0, 10.0)))
    b = SimModel("b", 1.0, 1.0, 1, 5.0, ((1.0, 10.0), (1.0, 10.0)))
    both = simulate([a, b], _nodes(2))
    assert both.makespan_seconds == pytest.approx(25.0)  # side by side: start 5 s, two units of 10 s
    one_gpu = simulate([a, b], _nodes(1))
    assert one_gpu.makespan_seconds == pytest.approx(50.0)  # in turn
    assert one_gpu.held_gpu_seconds == pytest.approx(50.0)
    assert {m.units_done for m in one_gpu.models.values()} == {2}


def test_a_big_replica_goes_first_and_two_replicas_halve_a_model() -> None:
    tp = SimModel("tp", 2.0, 1.0, 1, 0.0, ((1.0, 30.0),))
    small = SimModel("small", 1.0, 1.0, 2, 0.0, tuple((1.0, 10.0) for _ in range(4)))
    result = simulate([small, tp], _nodes(2))
    assert result.models["tp"].first_requested == 0.0  # half a node or more: placed before smaller replicas
    assert result.models["small"].first_requested == pytest.approx(30.0)
    assert result.models["small"].replicas == 2
    assert result.makespan_seconds == pytest.approx(30.0 + 20.0)  # 4 units of 10 s on 2 replicas


def _spec(tmp_path: Path, data: Path, models: list[dict[str, Any]]) -> SweepSpec:
    return spec_from_dict({"seed": 0, "out": str(tmp_path / "out"), "shard_size": SHARD, "resamples": 0,
                           "suites": [{"name": "rewardbench", "data": str(data), "limit_per_subset": 2}],
                           "models": models})


MODELS = [
    {"name": "length"},
    {"name": "rm-8b", "kind": "classifier", "path": "org/rm-8B"},
    {"name": "rm-70b", "kind": "classifier", "path": "org/rm-70B"},
    {"name": "judge-70b", "kind": "judge", "path": "org/judge-70B", "tensor_parallel_size": 4},
]


def test_what_fits_and_what_cannot_run(tmp_path: Path, rewardbench_file: Path) -> None:
    spec = _spec(tmp_path, rewardbench_file.parent, MODELS)
    plan = plan_sweep(spec, parse_nodes("2x2"))
    by = {m.name: m for m in plan.models}
    n_units = by["length"].units
    assert n_units > 1 and by["length"].units_stored == 0
    assert by["judge-70b"].units == 2 * n_units  # a pairwise judge: both orders of every pair
    assert by["rm-8b"].can_run and by["rm-8b"].gpus == 1 and by["rm-8b"].estimate_source == "assumed"
    assert by["rm-8b"].memory_gb_per_gpu == pytest.approx(8 * 2 * 1.2 + 2)  # bf16 weights, engine's share
    assert not by["rm-70b"].can_run and "GB per GPU" in (by["rm-70b"].reason or "")
    assert not by["judge-70b"].can_run  # the sweep's own refusal: 4 GPUs on one node
    assert "tensor_parallel_size 4" in (by["judge-70b"].reason or "") and "one node" in (by["judge-70b"].reason or "")
    assert by["judge-70b"].end_s is None  # never placed
    assert plan.critical_path is not None and plan.critical_path["model"] in {"rm-8b", "length"}
    assert 0 < plan.lower_bound_s <= plan.makespan_s
    assert plan.gpu_hours > 0
    d = plan.to_dict()
    assert {"makespan_s", "lower_bound_s", "gpu_hours", "models"} <= set(d)
    assert set(d["models"][0]) >= {"name", "units", "units_stored", "can_run", "reason", "estimate_source"}
    # on one node of 4 GPUs the tensor-parallel judge fits (and 160 GB of a 70B model spread over 4 GPUs too)
    assert {m.name: m.can_run for m in plan_sweep(spec, gpu_nodes(1, 4)).models}["judge-70b"]
    # a cluster with fewer GPUs than its tensor_parallel_size in all: refused, not run on CPUs
    small = {m.name: m for m in plan_sweep(spec, gpu_nodes(1, 2)).models}["judge-70b"]
    assert not small.can_run and "tensor_parallel_size 4" in (small.reason or "")
    # this machine's CPUs: the 70B model's weights are weighed against its memory
    cpu = {m.name: m for m in plan_sweep(spec, this_machine()).models}
    assert cpu["judge-70b"].gpus == 0 and cpu["length"].can_run


def test_stored_units_are_subtracted_and_measured_rates_replace_assumptions(tmp_path: Path,
                                                                           rewardbench_file: Path) -> None:
    spec = _spec(tmp_path, rewardbench_file.parent, MODELS[:2])
    suite = load_suite(spec.suites[0], spec.seed)
    units = make_units(spec, [suite])
    store = ResultStore(spec.out)
    worker = ModelWorker(spec.models[0], spec.seed)  # the length baseline, scored in this process
    length_units = [u for u in units if u.model == "length"]
    for u in length_units[:-1]:
        result = worker.score_shard(u.task(spec.seed), item_rows(suite.items, u.start, u.stop))
        write_result(store, u, result.table, result.n_errors, max(result.seconds, 1e-3))
    plan = {m.name: m for m in plan_sweep(spec, gpu_nodes(1, 1)).models}
    assert (plan["length"].units, plan["length"].units_stored) == (1, len(length_units) - 1)
    assert plan["rm-8b"].units_stored == 0

    rate = MeasuredRate(tokens_per_second=1234.0, gpus=1.0, cpus=1.0, units=3, start_seconds=42.0)
    write_run(store, RunRecord(rates={"rm-8b": rate}, overheads={"startup_seconds": 7.0, "report_seconds": 3.0}))
    measured = plan_sweep(spec, gpu_nodes(1, 2))
    rm = {m.name: m for m in measured.models}["rm-8b"]
    assert (rm.estimate_source, rm.tokens_per_second, rm.start_seconds) == ("measured", 1234.0, 42.0)
    assert measured.overheads_source == "measured" and measured.startup_s == 7.0 and measured.report_s == 3.0
    assert measured.calibrated_from == [spec.out]
    # a rate measured on GPUs says nothing of a CPU replica; another store can be named instead of the spec's own
    on_cpus = {m.name: m for m in plan_sweep(spec, this_machine()).models}["rm-8b"]
    assert on_cpus.estimate_source == "assumed"
    elsewhere = {m.name: m for m in plan_sweep(spec, gpu_nodes(1, 2), [str(tmp_path / "none")]).models}["rm-8b"]
    assert elsewhere.estimate_source == "assumed"

    # status: the units of the length model landed in this run give its rate and the work left
    write_plan(store, "run1", time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - 60)), units)
    st = read_status(spec.out)
    progress = {p.model: p for p in st.progress}
    assert progress["length"].rate_source == "this run" and progress["length"].units_left == 1
    assert progress["length"].tokens_per_second and progress["length"].eta_seconds is not None
    assert progress["rm-8b"].rate_source == "measured"  # no unit yet: the store's earlier measurement
    assert progress["rm-8b"].units_left == sum(1 for u in units if u.model == "rm-8b")
    assert st.eta_seconds is not None and st.eta_seconds > 0
    write_run(store, RunRecord())  # no earlier measurement, and a baseline's speed says nothing of a model's
    st = read_status(spec.out)
    assert {p.model: p.rate_source for p in st.progress}["rm-8b"] is None and st.eta_seconds is None


def test_status_borrows_the_pooled_rate_of_the_models_measured_in_the_run(tmp_path: Path,
                                                                          rewardbench_file: Path) -> None:
    models = [MODELS[1], {"name": "rm-2b", "kind": "classifier", "path": "org/rm-2B"}]
    spec = _spec(tmp_path, rewardbench_file.parent, models)
    suite = load_suite(spec.suites[0], spec.seed)
    units = make_units(spec, [suite])
    store = ResultStore(spec.out)
    write_plan(store, "run1", time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - 60)), units)
    # rm-8b's first unit, its rows made by the length rule in this process (an 8B model cannot run here), 8 s
    stand_in = ModelWorker(spec_from_dict({"models": [{"name": "length"}], "suites": spec.to_dict()["suites"]})
                           .models[0], spec.seed)
    first = next(u for u in units if u.model == "rm-8b")
    result = stand_in.score_shard(first.task(spec.seed), item_rows(suite.items, first.start, first.stop))
    write_result(store, first, result.table, result.n_errors, 8.0)
    progress = {p.model: p for p in read_status(spec.out).progress}
    assert progress["rm-8b"].rate_source == "this run"
    assert progress["rm-8b"].tokens_per_second == pytest.approx(first.tokens / 8.0, rel=1e-3)  # sizes rounded
    rm2 = progress["rm-2b"]  # nothing landed: rm-8b's seconds per cost unit (tokens x params), a quarter the size
    assert rm2.rate_source == "pooled"
    left = [u for u in units if u.model == "rm-2b"]
    assert rm2.work_left_seconds == pytest.approx(sum(u.cost for u in left) * 8.0 / first.cost, rel=1e-3)


def test_measured_rates_from_a_runs_units() -> None:
    class U:
        def __init__(self, key: str, model: str, tokens: float) -> None:
            self.key, self.model, self.tokens = key, model, tokens

    class E:
        def __init__(self, seconds: float) -> None:
            self.seconds = seconds

    units = [U("a", "m", 1000.0), U("b", "m", 3000.0), U("c", "m", 500.0), U("d", "m", 100.0)]
    entries: Any = {"a": E(1.0), "b": E(3.0), "c": E(0.0), "d": E(5.0)}  # c: error rows, no time
    replicas = [{"model": "m", "requested_at": 10.0, "ready_at": 30.0, "load_seconds": 12.0, "released_at": 33.0},
                {"model": "m", "requested_at": 10.0, "ready_at": 20.0, "load_seconds": 8.0, "released_at": 23.0}]
    rates = measured_rates(units, entries, ["a", "b", "c"], replicas, {"m": 2}, {"m": 1.0}, {"m": 4.0}, "r")
    r = rates["m"]
    assert (r.tokens_per_second, r.units, r.start_seconds, r.load_seconds) == (1000.0, 2, 15.0, 10.0)
    assert (r.gpus, r.cpus, r.engine_starts, r.run_id) == (1.0, 4.0, 2, "r")
    assert r.unit_overhead_seconds == 1.0  # held 3 + 3 s after their starts, 4 s of it scoring, over 2 units
    est = estimate_model(_spec_of_one_classifier(), 1.0, r)
    assert est.unit_seconds(2000.0, 4) == 2.0 + 1.0  # the measured rate, and the overhead around each unit


def _spec_of_one_classifier() -> Any:
    return spec_from_dict({"out": "unused", "suites": [{"name": "rewardbench"}],
                           "models": [{"name": "m", "kind": "classifier", "path": "org/rm-8B"}]}).models[0]


def test_progress_rate_eta_and_stall() -> None:
    landed = [LandedUnit(1000.0, 10.0, 110.0), LandedUnit(1000.0, 10.0, 120.0)]
    p = model_progress("m", landed, [1000.0, 1000.0, 1000.0], None, now=125.0, finished=False)
    assert (p.tokens_per_second, p.work_left_seconds, p.rate_source) == (100.0, 30.0, "this run")
    assert p.eta_seconds == pytest.approx(30.0) and not p.stalled  # 20 s of work in 25 s: one replica
    parallel = [LandedUnit(1000.0, 10.0, 110.0), LandedUnit(1000.0, 10.0, 110.0)]
    two = model_progress("m", parallel, [1000.0, 1000.0], None, now=110.0, finished=False)
    assert two.busy_replicas == pytest.approx(2.0) and two.eta_seconds == pytest.approx(10.0)
    stuck = model_progress("m", landed, [1000.0], None, now=120.0 + 1000.0, finished=False)
    assert stuck.stalled
    waiting = model_progress("w", [], [500.0], (50.0, "measured"), now=125.0, finished=False)
    assert (waiting.work_left_seconds, waiting.rate_source, waiting.stalled) == (50.0, "measured", False)
    assert sweep_eta([p, waiting], landed, now=125.0) == pytest.approx(80.0 / 1.0)


def test_model_sizes_from_hub_ids() -> None:
    sizes = {name: params_from_name(name) for name in ("Qwen/Qwen2.5-72B-Instruct", "org/prometheus-8x7b-v2.0",
                                                       "internlm/internlm2-1_8b-reward", "org/deberta-v3-large")}
    assert sizes == {"Qwen/Qwen2.5-72B-Instruct": 72.0, "org/prometheus-8x7b-v2.0": 56.0,
                     "internlm/internlm2-1_8b-reward": 1.8, "org/deberta-v3-large": None}


def test_estimates_scale_and_baselines_cost_nothing(tmp_path: Path, rewardbench_file: Path) -> None:
    spec = _spec(tmp_path, rewardbench_file.parent, MODELS[:2])
    length, rm = spec.models
    assert estimate_model(length, 0.0).params_b == 0.0
    one, two = estimate_model(rm, 1.0), estimate_model(rm, 2.0)
    assert two.tokens_per_second == pytest.approx(2 * one.tokens_per_second)
    measured = MeasuredRate(tokens_per_second=500.0, gpus=1.0, cpus=1.0)
    assert estimate_model(rm, 2.0, measured).tokens_per_second == 1000.0


def test_a_kind_that_states_its_size_is_priced_by_it(tmp_path: Path, rewardbench_file: Path) -> None:
    """A plugin kind that loads its weights its own way and says its size (`Capabilities.param_count`, no weight
    files) is priced like a model of that size, not like a baseline."""
    from dataclasses import dataclass

    from rmorch.actors import KINDS, register_kind
    from rmorch.actors.base import Capabilities, ModelKind

    @dataclass(frozen=True)
    class SizedConfig:
        size_b: float = 8.0

    with KINDS.scoped():
        @register_kind
        class Sized(ModelKind):
            kind = "sized-for-test"
            Config = SizedConfig
            uses_gpu = True
            description = "test kind with a stated size"

            @classmethod
            def capabilities(cls, config: SizedConfig) -> Capabilities:
                return Capabilities(param_count=config.size_b * 1e9)

        spec = _spec(tmp_path, rewardbench_file.parent, [{"name": "sized", "kind": "sized-for-test", "size_b": 8.0},
                                                         {"name": "rm-8b", "kind": "classifier", "path": "org/rm-8B"}])
        sized, rm = (estimate_model(m, 1.0) for m in spec.models)
    assert sized.params_b == 8.0
    assert sized.tokens_per_second == pytest.approx(rm.tokens_per_second)  # both 8B on one GPU
    assert sized.memory_gb_per_gpu > 16.0  # its bf16 weights and the engine's share
    assert sized.start_seconds == pytest.approx(rm.start_seconds)  # reads 16 GB of weights, unlike a baseline
