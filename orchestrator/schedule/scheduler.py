"""Decides where and when work runs; never how to score.

Per model: a queue of its work units (longest first). The scheduler keeps its own view of the free GPUs and CPUs of
every node (rmorch.orchestrator.schedule.nodes) and, whenever something changes, asks the packing policy (rmorch.orchestrator.schedule.placement)
which replicas to start and where: the models with the most work first, big tensor-parallel replicas before small
ones, as many replicas per model as shorten the sweep (`replicas: auto`) or exactly the spec's number. Each replica
is pinned to the node the policy chose, loaded once, and pulls the next unit of its model's queue whenever it
finishes one (two in flight while the queue is long, so it never waits for the driver; one near the end, so the
last units spread over the replicas). When its model's queue is empty and its last unit is back, its GPUs go to the
next model that fits: if the policy starts a model of the same shape on them (same node, GPUs, CPUs, bundles) and
both kinds allow it (`ModelKind.reusable_process`: transformers and weightless kinds, never vLLM), the replica's
process stays and loads that model (`ModelWorker.reload`: no new process, no second import of torch); otherwise the
replica is closed and killed. `reuse_processes: false` in the spec always starts new processes.

Cost model (rmorch.orchestrator.plan.costs): unit cost = tokens x parameters; seconds per cost unit and load times are measured
as the sweep runs and refine every decision.

Tensor parallel: a model with `tensor_parallel_size: k` gets a placement group of k bundles ({GPU: 1, CPU: c} each,
STRICT_PACK on the chosen node) per replica; its actor is scheduled into bundle 0 without GPUs of its own and the
engine's workers (vLLM's Ray executor on GPUs, its processes on CPU) use the group's bundles. The group is removed
with the replica.

Failures: a replica that dies (process killed, node lost), whose engine dies (rmorch.actors.engine_health: the
engine raises that it is dead, or its process vanishes and the replica exits), or whose unit runs past its timeout
(`unit_timeout_s`: a number, `auto` from the measured rate, or null) is killed and replaced: the unit it was
running is charged an attempt, the units queued behind it are requeued, nothing is bisected into error rows;
a unit that fails more than `max_retries` times becomes error rows (a unit redone for the error rows of an earlier
run, `WorkUnit.requests`, covers only those: rmorch.orchestrator.plan.redo writes them back among its good rows).
A replica that dies while starting, or is still loading `load_timeout_s` after it was requested, is killed and
replaced too; after `max_retries` such starts its model fails. A model that cannot load (its replica answers
`ready` or `reload` with a LoadFailure) is reported and skipped; the rest of the sweep goes on.

Error cap (rmorch.orchestrator.schedule.error_cap): once ERROR_CAP_MIN_ROWS result rows are written in this run
and more than the spec's `max_error_rate` of them (all models and suites together) are error rows, the sweep
stops: nothing more is submitted, every replica is killed, units in flight are dropped; what was written stays (a
rerun resumes), and RunStats.stopped says why (ErrorCapStop.message names the worst models). The same cap per
model: once a model has ERROR_CAP_MIN_ROWS rows in this run and more than `max_error_rate` of them are
errors, that model alone stops the same way (RunStats.stopped_models) and the others go on.

Run metadata: loads and engine starts per model, where each replica ran, per-model wall time, and GPU time split
into working (a replica holds a unit), loading and idle.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import ray
from ray.exceptions import RayActorError, RayError, RayTaskError
from ray.util.placement_group import PlacementGroup, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rmorch.actors import get_kind
from rmorch.actors.engine_health import EngineFailure
from rmorch.actors.worker import LoadFailure, ModelWorker, ShardResult, ShardTask, error_table
from rmorch.core.errors import first_line
from rmorch.core.model_spec import ModelSpec
from rmorch.orchestrator.plan.costs import CostModel
from rmorch.orchestrator.plan.items import ItemFile, item_rows
from rmorch.orchestrator.plan.redo import write_result
from rmorch.orchestrator.plan.score_cache import ScoreCache
from rmorch.orchestrator.plan.units import WorkUnit
from rmorch.orchestrator.progress import Display
from rmorch.orchestrator.schedule.error_cap import ErrorCapStop, ErrorTally, ModelErrorStop
from rmorch.orchestrator.schedule.nodes import ClusterView, packed_group, pin_to_node
from rmorch.orchestrator.schedule.placement import ModelDemand, plan_starts, replica_gpus, replica_needs
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ResultStore

log = logging.getLogger(__name__)

IN_FLIGHT_PER_REPLICA = 2
REFRESH_NODES_SECONDS = 10.0
# unit_timeout_s: auto (Scheduler.unit_timeout)
UNIT_TIMEOUT_FACTOR = 20.0
UNIT_TIMEOUT_FLOOR_S = 300.0
UNIT_TIMEOUT_UNMEASURED_S = 3600.0
UNIT_TIMEOUT_GRACE_S = 30.0  # past a unit's deadline, before the scheduler kills a replica its watchdog did not end


def unit_timeout(setting: float | str | None, expected_seconds: float | None) -> float | None:
    """The spec's `unit_timeout_s` as seconds; with `auto`, UNIT_TIMEOUT_FACTOR x the unit's expected seconds (from
    its model's measured rate), at least UNIT_TIMEOUT_FLOOR_S, or UNIT_TIMEOUT_UNMEASURED_S while nothing of the
    model is measured (`expected_seconds` None); None: never."""
    if setting != "auto":
        return None if setting is None else float(setting)
    if expected_seconds is None:
        return UNIT_TIMEOUT_UNMEASURED_S
    return max(UNIT_TIMEOUT_FLOOR_S, UNIT_TIMEOUT_FACTOR * expected_seconds)


def _timed_out(limit: float) -> str:
    return f"unit timed out after {limit:.0f}s (unit_timeout_s)"


@dataclass
class RunStats:
    computed: list[str] = field(default_factory=list)  # unit keys written in this run
    loads: dict[str, int] = field(default_factory=dict)  # model -> replicas that finished loading
    load_seconds: dict[str, list[float]] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)  # first replica ready -> last unit written
    model_wall_seconds: dict[str, float] = field(default_factory=dict)  # first replica requested -> last released
    failed_models: dict[str, str] = field(default_factory=dict)  # model -> why it could not run
    engine_starts: dict[str, int] = field(default_factory=dict)  # model -> inference engines started, all replicas
    # where and when each replica ran: ModelWorker.describe() (incl. load_started_at) plus requested_at / ready_at /
    # released_at (Unix times), node_id and gpus
    replicas: list[dict[str, Any]] = field(default_factory=list)
    processes_started: int = 0  # replica processes (Ray actors) created
    reloads: int = 0  # replicas that loaded their model in an earlier replica's process instead
    retries: int = 0
    error_rows: int = 0
    makespan_seconds: float = 0.0  # first replica requested -> last replica released
    gpus: float = 0.0  # GPUs of the cluster when the sweep started
    # GPU-seconds over the makespan: total, working (held by a replica with a unit in flight), loading, held
    gpu_seconds: dict[str, float] = field(default_factory=dict)
    gpu_idle_fraction: float | None = None  # 1 - working / total; None without GPUs
    stopped: ErrorCapStop | None = None  # the sweep was stopped early (max_error_rate)
    stopped_models: dict[str, ModelErrorStop] = field(default_factory=dict)  # models stopped by max_error_rate
    # model -> why each of its replicas was lost and replaced (process or engine died, unit or load timed out)
    replaced: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Replica:
    model: str
    actor: Any
    node_id: str | None  # where the scheduler placed it (None: left to Ray)
    gpus: float
    cpus: float
    pg: PlacementGroup | None = None  # tensor-parallel replicas only
    bundles: tuple[tuple[tuple[str, float], ...], ...] = ()  # the placement group's bundles (tensor parallel)
    reusable: bool = False  # its process may load another model when this one is done (ModelKind.reusable_process)
    ready: bool = False
    closing: bool = False
    inflight: dict[Any, WorkUnit] = field(default_factory=dict)  # ObjectRef -> unit, in submission order
    requested_at: float = field(default_factory=time.time)
    ready_at: float | None = None
    released_at: float | None = None
    head_started: float = 0.0  # when the oldest in-flight unit began running
    working_since: float | None = None
    working_seconds: float = 0.0
    engine_starts: int = 0  # as last reported by the replica
    info: dict[str, Any] = field(default_factory=dict)  # ModelWorker.describe() plus timings


def tensor_parallel_size(spec: ModelSpec) -> int:
    return get_kind(spec.kind).capabilities(spec.config).tensor_parallel_size


def gpus_per_replica(spec: ModelSpec, cluster_gpus: float) -> float:
    """GPUs one replica holds in all (a tensor-parallel replica: one per rank; none on a CPU-only cluster)."""
    return replica_gpus(replica_needs(spec), cluster_gpus)


def tensor_parallel_bundles(spec: ModelSpec, cluster_gpus: float) -> list[dict[str, float]]:
    """The placement-group bundles of one tensor-parallel replica: a GPU (when the cluster has them) and an
    equal share of the replica's CPUs per rank."""
    tp = tensor_parallel_size(spec)
    gpus = gpus_per_replica(spec, cluster_gpus) / tp
    cpus = spec.resources.num_cpus / tp
    bundle = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return [dict(bundle) for _ in range(tp)]


class Scheduler:
    def __init__(self, spec: SweepSpec, items: Mapping[str, ItemFile | pa.Table], store: ResultStore,
                 display: Display, cache: ScoreCache | None = None):
        self.spec = spec
        self.cache = cache or ScoreCache(spec.seed)
        self.models = {m.name: m for m in spec.models}
        self.store = store
        self.display = display
        # Each suite's item file (rmorch.orchestrator.plan.items) or table. A unit's rows are read when it is submitted and go
        # with its task through Ray's object store (any node reads them there), freed when the task is done: the
        # driver never holds or puts a whole suite.
        self.items = items
        self.view = ClusterView()
        self.cluster_gpus = float(ray.cluster_resources().get("GPU", 0))
        self.gpus = {m: gpus_per_replica(s, self.cluster_gpus) for m, s in self.models.items()}
        self.costs = CostModel(dict(self.gpus))
        self.remote_worker = ray.remote(ModelWorker)
        self.stats = RunStats()
        self.released: list[Replica] = []
        self.spare: list[Replica] = []  # done replicas whose process the next start of the same shape may take
        self.groups_made = 0

    # ---- the loop ----------------------------------------------------------------------------------------------
    def run(self, units: list[WorkUnit]) -> RunStats:
        self.queues: dict[str, deque[WorkUnit]] = {}
        for u in sorted(units, key=lambda u: -u.cost):
            self.queues.setdefault(u.model, deque()).append(u)
        self.queued_cost = {m: sum(u.cost for u in q) for m, q in self.queues.items()}
        self.attempts: dict[str, int] = {}  # unit key -> failed attempts
        self.timeouts: dict[str, float | None] = {}  # unit key -> the timeout its replica was last sent
        self.start_failures: dict[str, int] = {}  # model -> replicas that died before they were ready
        self.started: dict[str, float] = {}
        self.live: list[Replica] = []  # requested and not yet released
        self.ready_refs: dict[Any, Replica] = {}
        self.shard_refs: dict[Any, Replica] = {}
        self.closing: dict[Any, Replica] = {}  # close() calls of replicas about to be killed
        self.errors = ErrorTally(self.spec.max_error_rate)
        self.t0 = time.time()
        self.stats.gpus = self.view.total_gpus
        last_refresh = time.monotonic()

        self._place()
        while self.ready_refs or self.shard_refs or self.closing:
            waiting = list(self.ready_refs) + list(self.shard_refs) + list(self.closing)
            done, rest = ray.wait(waiting, num_returns=1, timeout=5.0)
            if done and rest:
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                done += more
            for ref in done:
                if ref in self.ready_refs:
                    self._on_ready(ref, self.ready_refs.pop(ref))
                elif ref in self.shard_refs:
                    self._on_shard(ref, self.shard_refs.pop(ref))
                elif ref in self.closing:
                    self._kill(self.closing.pop(ref))
            self._time_out_hung()
            self._time_out_loads()
            if time.monotonic() - last_refresh > REFRESH_NODES_SECONDS:
                self._refresh_nodes()
                last_refresh = time.monotonic()
            self._place()
        self._finish_stats()
        return self.stats

    # ---- placement ---------------------------------------------------------------------------------------------
    def _place(self) -> None:
        """Start the replicas the packing policy asks for (in spare processes of the same shape where possible);
        close the spare processes no start took."""
        self._start_replicas()
        for spare in self.spare:
            self.closing[spare.actor.close.remote()] = spare
        self.spare.clear()

    def _start_replicas(self) -> None:
        """Start what the packing policy asks for; if nothing runs and nothing fits the known nodes (an
        autoscaling cluster with no node yet), request one replica from Ray unpinned so the autoscaler sees it."""
        by_model: dict[str, list[Replica]] = {}
        for r in self.live:
            if not r.closing:
                by_model.setdefault(r.model, []).append(r)
        demands = [self._demand(m, by_model.get(m, [])) for m in self.models
                   if self.queues.get(m) or any(r.inflight for r in by_model.get(m, []))]
        if not demands:
            return
        warm: dict[str | None, tuple[float, ...]] = {}
        for spare in self.spare:
            warm[spare.node_id] = warm.get(spare.node_id, ()) + (spare.gpus,)
        free = [replace(n, warm=warm.get(n.node_id, ())) for n in self.view.free()]
        starts = plan_starts(demands, free, self.costs.known)
        for s in starts:
            self._spawn(s.model, s.node_id)
        if not starts and not self.live:
            waiting = max((d for d in demands if d.units_queued), key=lambda d: d.remaining_seconds, default=None)
            if waiting is not None:
                self._spawn(waiting.name, None)

    def _demand(self, model: str, replicas: list[Replica]) -> ModelDemand:
        """What the packing policy needs to know of `model` (its live replicas given)."""
        spec = self.models[model]
        rate = self.costs.seconds_per_cost(model)
        now = time.time()
        remaining = self.queued_cost.get(model, 0.0) * rate
        for r in replicas:
            if r.inflight:
                held = sum(u.cost for u in r.inflight.values()) * rate
                remaining += max(0.0, held - (now - r.head_started))
        explicit = spec.resources.replicas
        return ModelDemand(
            name=model,
            gpus=self.gpus[model],
            cpus=spec.resources.num_cpus,
            replicas=len(replicas),
            max_replicas=None if explicit == "auto" else int(explicit),
            units_queued=len(self.queues.get(model, ())),
            remaining_seconds=remaining,
            load_seconds=self.costs.load_seconds(model) if self.costs.known else 0.0,
        )

    def _spawn(self, model: str, node_id: str | None) -> None:
        spec = self.models[model]
        tp_bundles = tensor_parallel_bundles(spec, self.cluster_gpus) if tensor_parallel_size(spec) > 1 else []
        replica = Replica(model, None, node_id, self.gpus[model], spec.resources.num_cpus,
                          bundles=tuple(tuple(sorted(b.items())) for b in tp_bundles),
                          reusable=self.spec.reuse_processes and get_kind(spec.kind).reusable_process(spec.config))
        spare = self._spare_for(replica)
        if spare is not None:  # the process of a finished replica of the same shape loads this model
            self.spare.remove(spare)
            replica.actor, replica.pg = spare.actor, spare.pg
            ready = replica.actor.reload.remote(spec, self.spec.seed)
            self.stats.reloads += 1
        else:
            options: dict[str, Any] = {"max_restarts": 0, "max_concurrency": 1}
            if tp_bundles:
                self.groups_made += 1  # group names must be unique while they live
                replica.pg = packed_group(tp_bundles, node_id, f"rmorch:{model}:{self.groups_made}")
                options.update(num_cpus=tp_bundles[0]["CPU"], num_gpus=0,
                               scheduling_strategy=PlacementGroupSchedulingStrategy(
                                   replica.pg, placement_group_bundle_index=0,
                                   placement_group_capture_child_tasks=True))
            else:
                options.update(num_cpus=spec.resources.num_cpus, num_gpus=self.gpus[model], **pin_to_node(node_id))
            replica.actor = self.remote_worker.options(**options).remote(spec, self.spec.seed, keep_load_failure=True,
                                                                        watchdog=True)
            ready = replica.actor.ready.remote()
            self.stats.processes_started += 1
        self.view.hold(node_id, replica.gpus, replica.cpus)
        self.live.append(replica)
        self.ready_refs[ready] = replica

    def _spare_for(self, replica: Replica) -> Replica | None:
        """A spare process that `replica` can take: both reusable, same node, GPUs, CPUs and bundles."""
        if not replica.reusable:
            return None
        return next((s for s in self.spare if s.reusable and s.node_id == replica.node_id and s.gpus == replica.gpus
                     and s.cpus == replica.cpus and s.bundles == replica.bundles), None)

    def _refresh_nodes(self) -> None:
        """Forget nodes that died; a replica still starting on one will never start: replace it."""
        gone = self.view.refresh()
        for ref, replica in list(self.ready_refs.items()):
            if replica.node_id in gone:
                del self.ready_refs[ref]
                self._release(replica)
                ray.kill(replica.actor)

    def _release(self, replica: Replica, keep_process: bool = False) -> None:
        """Give the replica's resources back (in the view and, for tensor-parallel replicas, to Ray; with
        `keep_process` its process and placement group stay, for a spare)."""
        if replica.released_at is not None:
            return
        now = time.time()
        replica.released_at = now
        replica.info["released_at"] = now
        if replica.working_since is not None:
            replica.working_seconds += now - replica.working_since
            replica.working_since = None
        self.view.release(replica.node_id, replica.gpus, replica.cpus)
        if replica in self.live:
            self.live.remove(replica)
        if replica.pg is not None and not keep_process:
            remove_placement_group(replica.pg)
            replica.pg = None
        self.released.append(replica)

    def _kill(self, replica: Replica) -> None:
        ray.kill(replica.actor)
        self._release(replica)
        if replica.pg is not None:  # a spare's group, kept by _release(keep_process=True)
            remove_placement_group(replica.pg)
            replica.pg = None

    # ---- work --------------------------------------------------------------------------------------------------
    def _submit(self, replica: Replica) -> None:
        queue = self.queues.get(replica.model)
        siblings = sum(1 for r in self.live if r.model == replica.model and r.ready and not r.closing)
        while queue and len(replica.inflight) < IN_FLIGHT_PER_REPLICA:
            if replica.inflight and len(queue) < siblings:  # near the end: one unit each, so the tail spreads
                break
            unit = queue.popleft()
            self.queued_cost[unit.model] -= unit.cost
            ref = replica.actor.score_shard.remote(self._task(unit), item_rows(self.items[unit.suite], unit.start, unit.stop),
                                                   self.cache.known_for(unit))
            if not replica.inflight:
                replica.head_started = time.time()
                replica.working_since = replica.head_started
            replica.inflight[ref] = unit
            self.shard_refs[ref] = replica
        if not replica.inflight and not replica.closing:  # nothing left for this model: free its GPUs
            replica.closing = True
            if replica.reusable:  # its process may serve the next start of the same shape (see _place)
                self._release(replica, keep_process=True)
                self.spare.append(replica)
            else:
                self.closing[replica.actor.close.remote()] = replica

    def _task(self, unit: WorkUnit) -> ShardTask:
        """What the replica is sent: the unit and the deadline its watchdog holds it to (rmorch.actors.engine_health)."""
        timeout = self.unit_timeout(unit)
        self.timeouts[unit.key] = timeout
        return replace(unit.task(self.spec.seed), timeout_s=timeout)

    def _requeue(self, unit: WorkUnit) -> None:
        self.queues.setdefault(unit.model, deque()).appendleft(unit)
        self.queued_cost[unit.model] = self.queued_cost.get(unit.model, 0.0) + unit.cost

    def _on_ready(self, ref: Any, replica: Replica) -> None:
        try:
            info = ray.get(ref)
        except RayError as e:  # the process died, or a reload raised something else than a UserError
            self._start_failed(replica, "replica died while starting", str(e))
            return
        if isinstance(info, LoadFailure):  # the model itself cannot load: retrying will not help
            ray.kill(replica.actor)
            self._release(replica)
            self.stats.failed_models[replica.model] = info.message
            dropped = self.queues.pop(replica.model, deque())
            self.display.note(f"[red]model {replica.model} failed to load[/red]: {info.message} "
                              f"({len(dropped)} units not run)")
            return
        replica.ready = True
        replica.ready_at = time.time()
        self.costs.record_load(replica.model, replica.ready_at - replica.requested_at)
        self.stats.loads[replica.model] = self.stats.loads.get(replica.model, 0) + 1
        self._count_engines(replica, info["engine_starts"])
        replica.info = {"model": replica.model, **info, "requested_at": replica.requested_at,
                        "ready_at": replica.ready_at, "node_id": replica.node_id, "gpus": replica.gpus}
        self.stats.replicas.append(replica.info)
        self.stats.load_seconds.setdefault(replica.model, []).append(info["load_seconds"])
        self.started.setdefault(replica.model, time.perf_counter())
        log.info("replica of %s ready on %s (gpus %s) in %.1fs", replica.model, info["host"], info["gpu_ids"],
                 info["load_seconds"])
        self._submit(replica)

    def _start_failed(self, replica: Replica, what: str, detail: str) -> None:
        """A replica that died or hung before it was ready (`what`, `detail`: why): kill it (a reused process whose
        reload failed, or one still loading, is alive) and give its resources back. After `max_retries` such starts
        the model fails; until then the policy starts a replacement while the model has work."""
        ray.kill(replica.actor)
        self._release(replica)
        self.view.refresh()
        if replica.node_id is not None and replica.node_id not in self.view.nodes:
            return  # its node died before it started: not the model's fault; the policy places it again
        failures = self.start_failures.get(replica.model, 0) + 1
        self.start_failures[replica.model] = failures
        if failures > self.spec.max_retries:
            self.stats.failed_models[replica.model] = (f"{failures} replicas failed to start, the last: {what}: "
                                                       f"{detail}")[:1000]
            self.queues.pop(replica.model, None)
            return
        self.stats.retries += 1
        self.stats.replaced.setdefault(replica.model, []).append(f"{what}: {detail}"[:500])

    def _time_out_loads(self) -> None:
        """Kill every replica still loading `load_timeout_s` after it was requested (a download, a file read or an
        engine start that never ends), as a start that failed."""
        limit = self.spec.load_timeout_s
        if limit is None:
            return
        now = time.time()
        for ref, replica in list(self.ready_refs.items()):
            if now - replica.requested_at > limit:
                del self.ready_refs[ref]
                log.warning("replica of %s still loading after %.0f s (load_timeout_s): replaced", replica.model,
                            limit)
                self._start_failed(replica, "load timed out",
                                   f"not loaded {limit:.0f}s after it was requested (load_timeout_s)")

    def _on_shard(self, ref: Any, replica: Replica) -> None:
        head = next(iter(replica.inflight.values()))  # the unit the replica was running (one at a time, in order)
        unit = replica.inflight.pop(ref)
        now = time.time()
        head_started, replica.head_started = replica.head_started, now
        if not replica.inflight and replica.working_since is not None:
            replica.working_seconds += now - replica.working_since
            replica.working_since = None
        try:
            result: ShardResult = ray.get(ref)
        except RayActorError as e:
            if unit is not head:
                self._requeue(unit)
            limit = self.timeouts.get(head.key)
            if limit is not None and now - head_started >= limit:  # its watchdog's deadline passed
                self._lose(replica, head, _timed_out(limit))
            else:
                self._lose(replica, head, f"replica died: {first_line(e)[:300]}")
            return
        except RayTaskError as e:
            if isinstance(e.cause, EngineFailure):  # the engine is dead: a new replica retries the unit
                if unit is not head:
                    self._requeue(unit)
                self._lose(replica, head, f"engine died: {e.cause}")
                return
            self._retry_or_fail(unit, f"{type(e.cause).__name__}: {e.cause}" if e.cause else str(e))
            self._submit(replica)
            return
        self.costs.record_unit(unit.model, unit.cost, result.seconds)
        self._count_engines(replica, result.engine_starts)
        self._write(unit, result.table, result.n_errors, result.seconds)
        self._submit(replica)

    def _lose(self, replica: Replica, head: WorkUnit, reason: str) -> None:
        """The replica is gone or useless (its process died, its engine died, its unit hung): kill it and give its
        resources back; the unit it was running (`head`) is charged an attempt, the units queued behind it go back
        to the queue uncharged. The packing policy starts a replacement while the model has work."""
        for ref, other in list(replica.inflight.items()):
            self.shard_refs.pop(ref, None)
            if other is not head:
                self._requeue(other)
        replica.inflight.clear()
        replica.closing = True
        self.stats.replaced.setdefault(replica.model, []).append(reason[:500])
        log.warning("replica of %s lost: %s", replica.model, reason)
        self.display.note(f"[yellow]replica of {replica.model} replaced[/yellow]: {reason[:200]}")
        ray.kill(replica.actor)
        self._release(replica)
        self.view.refresh()
        self._retry_or_fail(head, reason)

    def unit_timeout(self, unit: WorkUnit) -> float | None:
        """Seconds a replica may spend on `unit` before it counts as hung (`unit_timeout`)."""
        measured = self.costs.measured(unit.model)
        expected = unit.cost * self.costs.seconds_per_cost(unit.model) if measured else None
        return unit_timeout(self.spec.unit_timeout_s, expected)

    def _time_out_hung(self) -> None:
        """Kill every replica still running a unit a grace period after its deadline (its own watchdog should have
        ended it: a process too stuck to run it); retry the unit elsewhere."""
        now = time.time()
        for replica in list(self.live):
            if not (replica.ready and replica.inflight) or replica.closing:
                continue
            head = next(iter(replica.inflight.values()))
            limit = self.timeouts.get(head.key)
            if limit is not None and now - replica.head_started > limit + max(UNIT_TIMEOUT_GRACE_S, limit / 4):
                self._lose(replica, head, _timed_out(limit))

    def _count_engines(self, replica: Replica, engine_starts: int) -> None:
        new = engine_starts - replica.engine_starts
        if new:
            replica.engine_starts = engine_starts
            self.stats.engine_starts[replica.model] = self.stats.engine_starts.get(replica.model, 0) + new

    def _retry_or_fail(self, unit: WorkUnit, reason: str) -> None:
        n = self.attempts.get(unit.key, 0) + 1
        self.attempts[unit.key] = n
        if n <= self.spec.max_retries:
            self.stats.retries += 1
            self._requeue(unit)
            return
        items = item_rows(self.items[unit.suite], unit.start, unit.stop)
        message = f"unit failed {n} times; last: {reason}"
        table = error_table(unit.task(self.spec.seed), items, self.models[unit.model], message)
        self._write(unit, table, table.num_rows, 0.0)

    def _write(self, unit: WorkUnit, table: pa.Table, n_errors: int, seconds: float) -> None:
        table = write_result(self.store, unit, table, n_errors, seconds)  # a redone unit: with its earlier good rows
        self.cache.add(self.models[unit.model], table, unit.identity)
        self.stats.computed.append(unit.key)
        self.stats.error_rows += n_errors
        if unit.model in self.started:
            self.stats.model_seconds[unit.model] = time.perf_counter() - self.started[unit.model]
        self.display.advance(unit.model, unit.suite, unit.n_requests)
        self.errors.add(unit.model, table, n_errors)
        if self.stats.stopped is None:
            stop = self.errors.over_cap()
            if stop is not None:
                self._stop(stop)
            elif unit.model not in self.stats.stopped_models:
                model_stop = self.errors.model_over_cap(unit.model)
                if model_stop is not None:
                    self._stop_model(model_stop)

    def _stop(self, stop: ErrorCapStop) -> None:
        """Stop the sweep: nothing more is submitted, every replica is killed and its resources released; units in
        flight are dropped (not written, so a rerun computes them). What is in the store stays consistent: each unit
        was written whole, its manifest entry last."""
        self.stats.stopped = stop
        for queue in self.queues.values():
            queue.clear()
        self.queued_cost = {m: 0.0 for m in self.queued_cost}
        self.ready_refs.clear()
        self.shard_refs.clear()
        self.closing.clear()
        for replica in list(self.live):
            replica.closing = True  # so that _submit does not ask a killed replica to close
            replica.inflight.clear()
            self._kill(replica)
        self.display.note(f"[red]stopped[/red]: {stop.error_rows} of {stop.rows} result rows are errors "
                          f"({stop.rate:.1%} > max_error_rate {stop.max_error_rate:g})")

    def _stop_model(self, stop: ModelErrorStop) -> None:
        """Stop one model (its error share passed max_error_rate): its remaining units are not run, its replicas are
        killed and their resources released, its units in flight dropped; its written rows stay, the other models
        go on."""
        self.stats.stopped_models[stop.model] = stop
        self.queues.pop(stop.model, None)
        self.queued_cost[stop.model] = 0.0
        for refs in (self.ready_refs, self.shard_refs):
            for ref, replica in list(refs.items()):
                if replica.model == stop.model:
                    del refs[ref]
        for replica in [r for r in self.live if r.model == stop.model]:
            replica.closing = True
            replica.inflight.clear()
            self._kill(replica)
        self.display.note(f"[red]model {stop.model} stopped[/red]: {stop.error_rows} of its {stop.rows} result rows "
                          f"are errors ({stop.rate:.1%} > max_error_rate {stop.max_error_rate:g})")

    # ---- metadata ----------------------------------------------------------------------------------------------
    def _finish_stats(self) -> None:
        replicas = self.released + self.live
        if not replicas:
            return
        end = max(r.released_at or time.time() for r in replicas)
        makespan = max(0.0, end - self.t0)
        self.stats.makespan_seconds = makespan
        for r in replicas:
            first = min(x.requested_at for x in replicas if x.model == r.model)
            last = max((x.released_at or end) for x in replicas if x.model == r.model)
            self.stats.model_wall_seconds[r.model] = last - first
        total = self.stats.gpus * makespan
        working = sum(r.gpus * r.working_seconds for r in replicas)
        loading = sum(r.gpus * ((r.ready_at or r.released_at or end) - r.requested_at) for r in replicas)
        held = sum(r.gpus * ((r.released_at or end) - r.requested_at) for r in replicas)
        self.stats.gpu_seconds = {"total": total, "working": working, "loading": loading, "held": held}
        self.stats.gpu_idle_fraction = (1.0 - working / total) if total > 0 else None
