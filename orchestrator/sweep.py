"""`run_sweep(spec)`: the one function behind `rmorch sweep`, callable from a notebook too.

spec -> load suites (fails fast on bad data) -> plan units -> subtract the store (a unit with error rows stays, for
those rows: rmorch.orchestrator.plan.redo) -> schedule on Ray -> report.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

import ray
import yaml
from ray._private import ray_constants

from rmorch.actors import get_kind
from rmorch.core.errors import UserError
from rmorch.orchestrator.join import join_cluster
from rmorch.orchestrator.plan.estimate import record_measurements
from rmorch.orchestrator.plan.items import spool_directory
from rmorch.orchestrator.plan.provenance import ModelIdentity, model_identities
from rmorch.orchestrator.plan.redo import pending_units
from rmorch.orchestrator.plan.score_cache import ScoreCache
from rmorch.orchestrator.plan.units import LoadedSuite, WorkUnit, load_suite, make_units
from rmorch.orchestrator.progress import Display, QuietDisplay
from rmorch.orchestrator.report.compute import LeaderboardEntry, build_report
from rmorch.orchestrator.report.render import write_report
from rmorch.orchestrator.schedule.placement import NodeSize, placement_refusal, replica_needs
from rmorch.orchestrator.schedule.scheduler import RunStats, Scheduler
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ManifestEntry, ResultStore
from rmorch.orchestrator.store.run_record import (
    LastRun,
    ModelRecord,
    RunRecord,
    UnreadableRunRecord,
    read_run,
    write_run,
)
from rmorch.orchestrator.store.status import new_run_id, write_plan

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    out: str
    leaderboard: list[LeaderboardEntry]
    stats: RunStats
    n_units: int  # units in the plan
    n_skipped: int  # already in the store
    seconds: float
    errors_redone: int = 0  # error rows of earlier runs computed again (rmorch.orchestrator.plan.redo)

    @property
    def ok(self) -> bool:
        return not self.stats.failed_models and self.stats.stopped is None and not self.stats.stopped_models

    @property
    def stopped(self) -> str | None:
        """Why the sweep stopped early (max_error_rate), for people; None if it ran to the end."""
        return self.stats.stopped.message() if self.stats.stopped is not None else None


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # join this cluster; None: start a local instance (or reuse one already up)
    num_cpus: int | None = None  # local instance only
    num_gpus: int | None = None  # local instance only; logical GPUs are fine for testing placement
    dashboard: bool = False  # local instance only: start Ray's dashboard (off by default)
    dashboard_host: str = "127.0.0.1"  # where the dashboard listens; 0.0.0.0 opens it to the network


def run_sweep(spec: SweepSpec, ray_options: RayOptions | None = None, display: Display | None = None,
              process_seconds: float | None = None) -> SweepResult:
    """Run `spec` to its end (see the module docstring). `process_seconds`: what the calling command spent before
    this call (its imports; rmorch.orchestrator.plan.estimate.process_seconds), recorded as part of the sweep's
    start-up for `rmorch plan`; None from Python, where the caller's time is not the sweep's."""
    t0 = time.perf_counter()
    display = display or QuietDisplay()
    store = ResultStore(spec.out)
    with spool_directory() as spool:  # the suites' item files (rmorch.orchestrator.plan.items)
        suites = [load_suite(s, spec.seed, spool) for s in spec.suites]
        _check_model_paths(spec)
        identities = model_identities(spec.models, spec.seed)
        units = make_units(spec, suites, {name: i.identity for name, i in identities.items()})
        done, run = _start_store(store, spec, suites, units, identities)
        pending = pending_units(units, done, store, spec.keep_errors)
        redo = {u.key: u.n_requests for u in pending if u.requests is not None}  # unit -> its error rows to redo
        cache = ScoreCache.from_store(store, spec, pending)
        n_pending = len(pending)
        left = cache.resolve(spec, pending, {ls.name: ls.file for ls in suites}, store)
        written = {u.key for u in pending} - {u.key for u in left}  # answered whole by the cache
        pending = left

        stats = RunStats()
        if pending:
            stats = _schedule(spec, suites, units, pending, store, display, ray_options or RayOptions(), run, cache)
        written.update(stats.computed)
        errors_redone = sum(n for key, n in redo.items() if key in written)
    run.last_run = LastRun(
        units_planned=len(units),
        units_skipped=len(units) - len(pending),
        units_computed=len(stats.computed),
        units_from_cache=n_pending - len(pending),
        requests_from_cache=cache.reused_requests,
        errors_redone=errors_redone,
        loads=stats.loads,
        engine_starts=stats.engine_starts,
        processes_started=stats.processes_started,
        reloads=stats.reloads,
        replicas=stats.replicas,
        load_seconds=stats.load_seconds,
        model_seconds=stats.model_seconds,
        model_wall_seconds=stats.model_wall_seconds,
        makespan_seconds=stats.makespan_seconds,
        gpus=stats.gpus,
        gpu_seconds=stats.gpu_seconds,
        gpu_idle_fraction=stats.gpu_idle_fraction,
        failed_models=stats.failed_models,
        retries=stats.retries,
        replaced=stats.replaced,
        error_rows=stats.error_rows,
        stopped=asdict(stats.stopped) if stats.stopped is not None else None,
        stopped_models={m: {k: v for k, v in asdict(s).items() if k != "model"}
                        for m, s in stats.stopped_models.items()},
        seconds=time.perf_counter() - t0,
    )
    record_measurements(run, spec, units, store, stats, process_seconds)  # what `rmorch plan` and `status` learn from
    write_run(store, run)
    del suites, cache  # the report reads what it needs back from the store
    t_report = time.perf_counter()
    report = build_report([spec.out], resamples=spec.resamples)
    write_report(spec.out, report)
    run.overheads["report_seconds"] = time.perf_counter() - t_report
    write_run(store, run)
    return SweepResult(spec.out, report.entries, stats, len(units), len(units) - len(pending), time.perf_counter() - t0,
                       errors_redone)


def _schedule(spec: SweepSpec, suites: list[LoadedSuite], units: list[WorkUnit], pending: list[WorkUnit],
              store: ResultStore, display: Display, ray_options: RayOptions, run: RunRecord,
              cache: ScoreCache) -> RunStats:
    started_here = False
    dashboard = None
    if not ray.is_initialized():
        dashboard = _init_ray(ray_options)
        started_here = True
    try:
        _check_resources(spec, autoscaling=bool(ray_options.address or os.environ.get("RAY_ADDRESS")))
        run.hardware = _hardware()
        totals: dict[tuple[str, str], list[int]] = {}
        left = {u.key: u.n_requests for u in pending}  # a unit redone for its error rows: those only
        for u in units:
            t = totals.setdefault((u.model, u.suite), [0, 0])
            t[1] += u.n_requests
            t[0] += u.n_requests - left.get(u.key, 0)
        display.start({k: (v[0], v[1]) for k, v in totals.items() if v[0] < v[1]})
        if dashboard:
            display.note(f"Ray dashboard: {dashboard}")
        try:
            return Scheduler(spec, {ls.name: ls.file for ls in suites}, store, display, cache).run(pending)
        finally:
            display.stop()
    finally:
        if started_here:
            ray.shutdown()


# Ray on Linux replaces a loopback node address by the machine's interface address, and its servers then listen on
# every interface (gRPC on 0.0.0.0 / ::, the agents and metrics servers on the interface address). Ray's own switch
# for clusters (off by default on macOS and Windows) makes it keep 127.0.0.1, and then every Ray server binds to
# loopback. tests/test_network.py checks the sockets.
_RAY_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _init_ray(opts: RayOptions) -> str | None:
    """Join `opts.address` (or RAY_ADDRESS), else start a local instance that listens on 127.0.0.1 only: the
    GCS, raylet, workers, agents and metrics servers; the dashboard only if asked for, on `dashboard_host`.
    Returns the dashboard's URL if one was started."""
    address = opts.address or os.environ.get("RAY_ADDRESS")
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR", "configure_logging": True}
    if address:
        join_cluster(address, **common)  # fails within seconds where it cannot join (rmorch.orchestrator.join)
        return None
    # The switch is read by this process (services.get_node_ip_address) and by the processes ray.init starts (the
    # raylet hands it on to the workers); both are set for the start only and restored after.
    saved = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(_RAY_CLUSTER_SWITCH)
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[_RAY_CLUSTER_SWITCH] = "0"
    try:
        context = ray.init(
            address="local",  # always a new local instance: never silently join another Ray on this machine
            num_cpus=opts.num_cpus or os.cpu_count(),
            num_gpus=opts.num_gpus,
            include_dashboard=opts.dashboard,
            dashboard_host=opts.dashboard_host,
            _node_ip_address="127.0.0.1",
            **common,
        )
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved[0]
        if saved[1] is None:
            os.environ.pop(_RAY_CLUSTER_SWITCH, None)
        else:
            os.environ[_RAY_CLUSTER_SWITCH] = saved[1]
    url = getattr(context, "dashboard_url", None)
    return f"http://{url}" if opts.dashboard and url else None


def _check_resources(spec: SweepSpec, autoscaling: bool = False) -> None:
    """A replica that no node can hold would wait forever: refuse it up front on a local instance. On a joined
    cluster (`--address`) an autoscaler may still add such nodes (KubeRay groups scaling from 0): warn instead.
    On a cluster with GPUs a tensor-parallel replica needs one GPU per rank on one node; only a CPU-only cluster runs
    its ranks on CPU cores. GPU requests that can never work (rmorch.orchestrator.schedule.placement.placement_refusal)
    are refused on any cluster."""
    nodes = [NodeSize(float(n["Resources"].get("GPU", 0)), float(n["Resources"].get("CPU", 0)))
             for n in ray.nodes() if n.get("Alive")]
    for m in spec.models:
        refusal = placement_refusal(replica_needs(m), nodes)
        if refusal is None:
            continue
        if not (refusal.needs_node and autoscaling):
            raise UserError(refusal.message)
        log.warning("%s yet; waiting for the autoscaler to add one", refusal.message)


def _start_store(store: ResultStore, spec: SweepSpec, suites: list[LoadedSuite], units: list[WorkUnit],
                 identities: dict[str, ModelIdentity]) -> tuple[dict[str, ManifestEntry], RunRecord]:
    """Before anything is scheduled: the verified finished units by key (unusable files are reported and their units
    recomputed), then items, spec, plan (for `rmorch status`) and run metadata written to the store."""
    try:
        done = {e.key: e for e in store.manifest(verify=True)}
        for ls in suites:
            store.write_items_file(ls.name, ls.file.path)
        store.write_text("spec.yaml", yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True))
        run = _run_metadata(store, spec, suites, identities)
        write_plan(store, run.run_id, run.started, units)
        write_run(store, run)
    except OSError as e:
        raise UserError(f"result store {spec.out}: {e}") from None
    return done, run


def _check_model_paths(spec: SweepSpec) -> None:
    """The main model of each entry exists where it names a local path (hub ids and builtin names are left to the
    loaders)."""
    for m in spec.models:
        weights = get_kind(m.kind).capabilities(m.config).weights
        path = weights[0] if weights else None
        if not path or path.startswith("builtin:"):
            continue
        looks_local = path.startswith((".", "/", "~"))  # hub ids look like org/name
        if looks_local and not os.path.exists(os.path.expanduser(path)):
            raise UserError(f"model '{m.name}': path '{path}' does not exist")


def _run_metadata(store: ResultStore, spec: SweepSpec, suites: list[LoadedSuite],
                  identities: dict[str, ModelIdentity]) -> RunRecord:
    previous = _previous_run(store)
    models = dict(previous.models)
    for m in spec.models:  # merged over runs: the latest settings of each model name win
        models[m.name] = ModelRecord(kind=m.kind, settings_hash=m.settings_hash, settings=m.settings(),
                                     identity=identities[m.name].identity,
                                     provenance=identities[m.name].provenance,
                                     resources=asdict(m.resources),
                                     batch_invariant=get_kind(m.kind).capabilities(m.config).batch_invariant)
    suite_names = list(previous.suites)
    suite_kinds = dict(previous.suite_kinds)
    for ls in suites:
        if ls.name not in suite_names:
            suite_names.append(ls.name)
        if ls.spec.kind:
            suite_kinds[ls.name] = ls.spec.kind
    return RunRecord(
        rmorch_version=_version("rmorch"),
        python=sys.version.split()[0],
        platform=platform.platform(),
        hardware=_hardware(),
        versions={p: _version(p) for p in ("ray", "torch", "transformers", "pyarrow", "vllm")},
        seed=spec.seed,
        suites=suite_names,
        suite_kinds=suite_kinds,
        suite_versions={ls.name: ls.suite.version for ls in suites},
        items={ls.name: ls.num_rows for ls in suites},
        models=models,
        ensembles={**previous.ensembles, **{e.name: e.to_dict() for e in spec.ensembles}},
        rates=dict(previous.rates),  # measured speeds, kept until a run measures the model again
        overheads=dict(previous.overheads),
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        run_id=new_run_id(),
        store_problems=list(store.problems),
    )


def _previous_run(store: ResultStore) -> RunRecord:
    """The last sweep's record (its models and suites are merged into this run's); an unreadable one is reported
    and replaced, never fatal: the results themselves are in the manifest."""
    try:
        return read_run(store) or RunRecord()
    except UnreadableRunRecord as e:
        log.warning("%s: %s; writing it anew", e.path, e.reason.split(";")[0])
        return RunRecord()


def _hardware() -> dict[str, Any]:
    """What the driver's machine and (when Ray is up) the cluster have: for reading timings next to it."""
    info: dict[str, Any] = {"driver_cpus": os.cpu_count(), "machine": platform.machine(),
                            "processor": platform.processor() or None}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        info["driver_memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        if ray.is_initialized():
            res = ray.cluster_resources()
            info["cluster"] = {"nodes": len([n for n in ray.nodes() if n.get("Alive")]),
                               "cpus": res.get("CPU", 0), "gpus": res.get("GPU", 0)}
    except ImportError:
        pass
    return info


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
