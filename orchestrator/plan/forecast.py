"""`rmorch plan SPEC`: what `rmorch sweep SPEC` would do on a given cluster, and how long it would take, without
loading a model or starting Ray.

The same steps as the sweep up to scheduling (rmorch.orchestrator.sweep): suites loaded, units made
(rmorch.orchestrator.plan.units, permutations included), the store's verified units subtracted by the sweep's own
rule (rmorch.orchestrator.plan.redo.pending_units: a unit with error rows stays, for those rows). Then, per model,
the estimator (rmorch.orchestrator.plan.estimate) prices its units and its replicas' start, a fit check says
whether any node can hold one replica (GPUs on one node, GPU memory), and the scheduler's policy is played on the
cluster (rmorch.orchestrator.plan.simulate). `makespan_s` is what a user waits for `rmorch sweep` to return: the
sweep's start-up, the simulated scheduling, and the report.

Not modelled: the score cache (units whose every request an earlier result of the same identity answers are
written without the model: rmorch.orchestrator.plan.score_cache); they count as work here.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from rmorch.core.errors import UserError
from rmorch.core.model_spec import ModelSpec
from rmorch.orchestrator.plan.estimate import (
    DEFAULT_GPU_MEMORY_GB,
    ModelEstimate,
    Overheads,
    estimate_model,
    usable_gb,
)
from rmorch.orchestrator.plan.items import spool_directory
from rmorch.orchestrator.plan.provenance import model_identities
from rmorch.orchestrator.plan.redo import pending_units
from rmorch.orchestrator.plan.simulate import SimModel, SimResult, simulate
from rmorch.orchestrator.plan.units import CHARS_PER_TOKEN, WorkUnit, load_suite, make_units
from rmorch.orchestrator.schedule.placement import NodeFree, NodeSize, placement_refusal, replica_gpus, replica_needs
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import MeasuredRate, UnreadableRunRecord, read_run

CPUS_PER_GPU = 8  # a described GPU node's CPUs (--nodes, --gpus N): rarely what limits a replica


@dataclass(frozen=True)
class NodeShape:
    gpus: float
    cpus: float
    gpu_memory_gb: float  # per GPU
    memory_gb: float | None = None  # host RAM (CPU replicas hold their weights there); None: unknown


@dataclass(frozen=True)
class ClusterShape:
    nodes: tuple[NodeShape, ...]
    description: str

    @property
    def gpus(self) -> float:
        return sum(n.gpus for n in self.nodes)


def this_machine() -> ClusterShape:
    """--gpus 0: this machine's CPUs and memory (what a local sweep's Ray instance gets)."""
    cpus = float(os.cpu_count() or 1)
    memory = _memory_gb()
    return ClusterShape((NodeShape(0, cpus, 0.0, memory),), f"this machine: {cpus:g} CPUs, no GPU")


def gpu_nodes(n_nodes: int, gpus_per_node: int, gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB) -> ClusterShape:
    """`n_nodes` nodes of `gpus_per_node` GPUs of `gpu_memory_gb` each (and CPUS_PER_GPU CPUs per GPU)."""
    if n_nodes < 1 or gpus_per_node < 0:
        raise UserError(f"a cluster of {n_nodes} nodes of {gpus_per_node} GPUs cannot be planned for")
    if gpus_per_node == 0:
        return this_machine()
    node = NodeShape(float(gpus_per_node), float(CPUS_PER_GPU * gpus_per_node), gpu_memory_gb)
    return ClusterShape((node,) * n_nodes, f"{n_nodes} node{'s' if n_nodes > 1 else ''} x {gpus_per_node} GPUs "
                                           f"({gpu_memory_gb:g} GB each)")


def parse_nodes(text: str, gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB) -> ClusterShape:
    """--nodes NxG: N nodes of G GPUs."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--nodes {text!r}: expected NODESxGPUS, e.g. 2x4 (2 nodes of 4 GPUs)")
    return gpu_nodes(int(m.group(1)), int(m.group(2)), gpu_memory_gb)


def ray_cluster(address: str, gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB) -> ClusterShape:
    """The live nodes of the Ray cluster at `address` (GPU memory: as given; Ray does not report it)."""
    import ray

    from rmorch.orchestrator.join import join_cluster

    join_cluster(address, log_to_driver=False, logging_level="ERROR")  # a UserError naming the address if it cannot
    try:
        return connected_cluster(address, gpu_memory_gb)
    finally:
        ray.shutdown()


def connected_cluster(address: str, gpu_memory_gb: float = DEFAULT_GPU_MEMORY_GB) -> ClusterShape:
    """The live nodes of the Ray cluster this process is connected to (`address`: how to name it)."""
    import ray

    nodes = tuple(NodeShape(float(n["Resources"].get("GPU", 0)), float(n["Resources"].get("CPU", 0)),
                            gpu_memory_gb, float(n["Resources"].get("memory", 0)) / 1e9 or None)
                  for n in ray.nodes() if n.get("Alive"))
    if not nodes:
        raise UserError(f"the Ray cluster at {address} has no live node")
    gpus = sum(n.gpus for n in nodes)
    return ClusterShape(nodes, f"Ray cluster {address}: {len(nodes)} nodes, {gpus:g} GPUs")


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        return kb * 1024 / 1e9
    except (OSError, StopIteration, ValueError):
        return None


# ---- the plan ----------------------------------------------------------------------------------------------------


@dataclass
class SuitePlan:
    name: str
    items: int
    tokens: float  # of every item's prompt and candidates, characters / 4


@dataclass
class ModelPlan:
    name: str
    kind: str
    units: int  # units the sweep would compute now (a unit with error rows to redo counts, for those rows)
    units_stored: int  # units of the plan already in the store, whole
    units_redo: int  # of `units`: stored units with error rows, redone for those rows
    tokens: float  # input tokens of `units`
    replica_seconds: float  # scoring seconds of one replica over `units`
    gpu_seconds: float  # replica_seconds x GPUs per replica
    gpus: float  # per replica
    cpus: float
    params_b: float
    memory_gb_per_gpu: float
    tokens_per_second: float  # one replica
    start_seconds: float  # requesting a replica -> its first unit (process, weights, engine)
    rate_source: str  # "measured" | "assumed"
    start_source: str
    estimate_source: str  # the rate's source: what decides the time
    can_run: bool
    reason: str | None  # why it cannot run on this cluster
    replicas: int = 0  # started in the simulation
    start_s: float | None = None  # first replica requested, seconds after scheduling began
    end_s: float | None = None  # last replica released


@dataclass
class SweepPlan:
    spec: str  # the spec's source (or out)
    out: str
    cluster: str
    suites: list[SuitePlan]
    models: list[ModelPlan]
    startup_s: float
    report_s: float
    overheads_source: str
    schedule_s: float  # first replica requested -> last released (simulated)
    lower_bound_s: float
    gpu_hours: float  # GPU-hours the replicas hold (loading and scoring), simulated
    critical_path: dict[str, Any] | None  # {model, end_s, why}
    calibrated_from: list[str] = field(default_factory=list)

    @property
    def makespan_s(self) -> float:
        return self.startup_s + self.schedule_s + self.report_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {"spec": self.spec, "out": self.out, "cluster": self.cluster, "makespan_s": self.makespan_s,
                "lower_bound_s": self.lower_bound_s, "gpu_hours": self.gpu_hours, "schedule_s": self.schedule_s,
                "startup_s": self.startup_s, "report_s": self.report_s, "overheads_source": self.overheads_source,
                "critical_path": self.critical_path, "calibrated_from": self.calibrated_from,
                "units": sum(m.units for m in self.models), "units_stored": sum(m.units_stored for m in self.models),
                "suites": d["suites"], "models": d["models"]}


def read_rates(outs: list[str]) -> tuple[dict[str, MeasuredRate], dict[str, float], list[str]]:
    """The measured rates and overheads of the stores `outs` (later ones win), and the stores that had any."""
    rates: dict[str, MeasuredRate] = {}
    overheads: dict[str, float] = {}
    used = []
    for out in outs:
        store = ResultStore(out)
        try:
            run = read_run(store)
        except (UnreadableRunRecord, OSError):
            run = None
        if run is None:
            continue
        if run.rates or run.overheads:
            used.append(out)
        rates.update(run.rates)
        overheads.update(run.overheads)
    return rates, overheads, used


def plan_sweep(spec: SweepSpec, cluster: ClusterShape, calibrate_from: list[str] | None = None,
               source: str | None = None) -> SweepPlan:
    """What `rmorch sweep` would decide for `spec` on `cluster`, and the estimated times (see the module docstring).
    `calibrate_from`: stores whose measured rates replace the assumptions (default: the spec's own store)."""
    rates, recorded_overheads, used = read_rates(calibrate_from if calibrate_from is not None else [spec.out])
    overheads = Overheads.from_record(recorded_overheads)
    store = ResultStore(spec.out)
    with spool_directory() as spool:
        suites = [load_suite(s, spec.seed, spool) for s in spec.suites]
        identities = model_identities(spec.models, spec.seed)
        units = make_units(spec, suites, {name: i.identity for name, i in identities.items()})
        try:
            done = {e.key: e for e in store.manifest(verify=True)}
        except OSError:
            done = {}
        pending = pending_units(units, done, store, spec.keep_errors)
        suite_plans = [SuitePlan(ls.name, ls.num_rows, sum(ls.index.column("chars").to_pylist()) / CHARS_PER_TOKEN)
                       for ls in suites]
    estimates = {m.name: estimate_model(m, replica_gpus(replica_needs(m), cluster.gpus), rates.get(m.name))
                 for m in spec.models}
    models = [_model_plan(m, estimates[m.name], units, pending, cluster) for m in spec.models]
    sim_models = [_sim_model(m, estimates[m.name], [u for u in pending if u.model == m.name])
                  for m, p in zip(spec.models, models) if p.can_run and p.units]
    nodes = [NodeFree(f"node-{i}", n.gpus, n.cpus, n.gpus, n.cpus) for i, n in enumerate(cluster.nodes)]
    result = simulate(sim_models, nodes)
    for p in models:
        t = result.models.get(p.name)
        if t is not None and t.units_done:
            p.replicas, p.start_s, p.end_s = t.replicas, t.first_requested, t.end
    return SweepPlan(
        spec=source or spec.out, out=spec.out, cluster=cluster.description, suites=suite_plans, models=models,
        startup_s=overheads.startup_seconds, report_s=overheads.report_seconds,
        overheads_source=overheads.source, schedule_s=result.makespan_seconds,
        lower_bound_s=overheads.startup_seconds + _schedule_lower_bound(sim_models, cluster) +
        overheads.report_seconds,
        gpu_hours=result.held_gpu_seconds / 3600.0,
        critical_path=_critical_path(result, {m.name: m for m in sim_models}),
        calibrated_from=used,
    )


def _model_plan(m: ModelSpec, est: ModelEstimate, units: list[WorkUnit], pending: list[WorkUnit],
                cluster: ClusterShape) -> ModelPlan:
    mine = [u for u in pending if u.model == m.name]
    planned = sum(1 for u in units if u.model == m.name)
    redo = sum(1 for u in mine if u.requests is not None)
    seconds = sum(est.unit_seconds(u.tokens, u.n_requests) for u in mine)
    reason = why_not(m, est, cluster)
    return ModelPlan(
        name=m.name, kind=m.kind, units=len(mine), units_stored=planned - len(mine) + redo, units_redo=redo,
        tokens=sum(u.tokens for u in mine), replica_seconds=seconds, gpu_seconds=seconds * est.gpus, gpus=est.gpus,
        cpus=est.cpus, params_b=est.params_b, memory_gb_per_gpu=est.memory_gb_per_gpu,
        tokens_per_second=est.tokens_per_second, start_seconds=est.start_seconds, rate_source=est.rate_source,
        start_source=est.start_source, estimate_source=est.estimate_source, can_run=reason is None, reason=reason)


def why_not(m: ModelSpec, est: ModelEstimate, cluster: ClusterShape) -> str | None:
    """Why no node of `cluster` can hold one replica of `m`; None when one can. The sweep's own refusal rules
    (rmorch.orchestrator.schedule.placement.placement_refusal: GPUs and CPUs on one node, whole GPUs per rank),
    then memory: per GPU its share of the weights and the engine's (rmorch.orchestrator.plan.estimate), or on CPUs
    the host's."""
    refusal = placement_refusal(replica_needs(m), [NodeSize(n.gpus, n.cpus) for n in cluster.nodes])
    if refusal is not None:
        return refusal.message
    if est.gpus > 0:
        holding = [n for n in cluster.nodes if n.gpus >= est.gpus]
        if not any(est.memory_gb_per_gpu <= usable_gb(m, n.gpu_memory_gb) for n in holding):
            usable = max(usable_gb(m, n.gpu_memory_gb) for n in holding)
            return (f"needs {est.memory_gb_per_gpu:.0f} GB per GPU ({est.params_b:.1f}B parameters at "
                    f"{getattr(m.config, 'dtype', 'auto')} over {est.gpus:g} GPUs, plus the engine's share); a GPU "
                    f"offers {usable:.0f} GB")
    elif est.params_b > 0:
        need = est.params_b * 2 * 1.2  # bf16 weights and the engine's share, in host memory
        known = [n.memory_gb for n in cluster.nodes if n.memory_gb is not None]
        if known and len(known) == len(cluster.nodes) and max(known) < need:
            return f"needs about {need:.0f} GB of memory for its weights; the largest node has {max(known):.0f} GB"
    return None


def _sim_model(m: ModelSpec, est: ModelEstimate, units: list[WorkUnit]) -> SimModel:
    explicit = m.resources.replicas
    return SimModel(m.name, est.gpus, est.cpus, None if explicit == "auto" else int(explicit), est.start_seconds,
                    tuple((u.cost, est.unit_seconds(u.tokens, u.n_requests)) for u in units))


def _schedule_lower_bound(models: list[SimModel], cluster: ClusterShape) -> float:
    """No schedule ends earlier: all work (and one start per model) spread over the whole cluster, nor before the
    slowest model's start plus its longest unit."""
    if not models:
        return 0.0
    on_gpus = cluster.gpus > 0

    def width(m: SimModel) -> float:
        return m.gpus if on_gpus else m.cpus

    capacity = sum(n.gpus if on_gpus else n.cpus for n in cluster.nodes)
    fluid = sum(width(m) * (m.start_seconds + sum(s for _, s in m.units)) for m in models) / capacity
    longest = max(m.start_seconds + max((s for _, s in m.units), default=0.0) for m in models)
    return max(fluid, longest)


def _critical_path(result: SimResult, models: dict[str, SimModel]) -> dict[str, Any] | None:
    """The model that ends last, and what its time goes to: waiting for free resources, starting, or scoring."""
    last = result.last_model()
    if last is None:
        return None
    m = models[last.name]
    wait = last.first_requested or 0.0
    per_replica = last.scoring_seconds / max(last.replicas, 1)
    what = "GPUs" if m.gpus else "CPUs"
    parts = [f"waits {wait:.0f} s for free {what}", f"starts in {m.start_seconds:.0f} s",
             (f"scores {len(m.units)} units ({last.scoring_seconds:.0f} replica-seconds) on {last.replicas} "
              f"replica{'s' if last.replicas != 1 else ''}")]
    longest = max(s for _, s in m.units)
    if wait >= max(m.start_seconds, per_replica):
        cause = f"mostly waiting: the policy gives the {what} to longer work first"
    elif m.start_seconds >= per_replica:
        cause = "mostly its start (process, weights, engine)"
    elif m.max_replicas is not None and len(m.units) > m.max_replicas:
        cause = (f"mostly scoring, on at most {m.max_replicas} replica{'s' if m.max_replicas != 1 else ''} "
                 f"(`replicas:` in the spec, default 1; `replicas: auto` spreads it over free {what})")
    elif longest > 0.5 * per_replica:
        cause = f"mostly scoring; its longest unit alone takes {longest:.0f} s (a smaller shard_size spreads it)"
    else:
        cause = "mostly scoring"
    return {"model": last.name, "end_s": last.end, "why": f"{'; '.join(parts)}: {cause}"}
