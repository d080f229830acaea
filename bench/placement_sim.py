"""The packing policy alone, in simulated time: rmorch.orchestrator.schedule.placement.plan_starts driving an event simulation of
the same 45-model sweep as bench/scheduler.py, with exact unit times, exact loads and no process start, driver or
Ray cost. It separates the policy's own makespan ratio from this machine's overheads.

    .venv/bin/python bench/placement_sim.py [--nodes 8] [--seconds 60] [--start-cost S] [--reuse]

`--start-cost S`: each replica process start takes S seconds, one at a time machine-wide (as on this 2-core machine);
`--reuse`: a finished replica's process serves the next start of its width on its node without that cost.

Last line: `policy_makespan_ratio=X`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.simulated_model  # noqa: F401  (registers the kind)
from bench.scheduler import GPUS, lower_bound, model_entries, write_suites
from rmorch.orchestrator.plan.costs import CostModel
from rmorch.orchestrator.plan.units import load_suite, make_units
from rmorch.orchestrator.schedule.placement import ModelDemand, NodeFree, plan_starts
from rmorch.orchestrator.spec.parse import spec_from_dict


@dataclass
class SimReplica:
    model: str
    node: str
    ready_at: float
    busy_until: float | None = None  # None: idle (or loading until ready_at)
    unit: float = 0.0


@dataclass
class SimModel:
    gpus: float
    load: float
    queue: list[float] = field(default_factory=list)  # unit seconds, longest first


def simulate(models: dict[str, SimModel], nodes: dict[str, float], start_cost: float = 0.0,
             reuse: bool = False) -> tuple[float, int, int]:
    """(makespan, loads, process starts) of the policy on `nodes` (node -> GPUs). `start_cost`: seconds of a
    machine-wide, one at a time process start before each load (how replica starts queue on this 2-core machine);
    `reuse`: a replica whose model is done leaves its process to a start of the same GPUs on its node (as the
    scheduler's `reuse_processes`), which then pays only the load."""
    free = dict(nodes)
    live: list[SimReplica] = []
    t, loads, starts, starter_free = 0.0, 0, 0, 0.0
    costs = CostModel({name: m.gpus for name, m in models.items()})  # loads as the scheduler measures them
    requested: dict[int, float] = {}
    while True:
        spare: list[tuple[str, float]] = []  # (node, GPUs) of processes freed at this instant
        for r in list(live):  # hand out work, release replicas whose model is done
            if r.ready_at <= t and id(r) in requested:
                costs.record_load(r.model, r.ready_at - requested.pop(id(r)))
            if r.ready_at <= t and (r.busy_until is None or r.busy_until <= t):
                q = models[r.model].queue
                if q:
                    r.unit = q.pop(0)
                    r.busy_until = t + r.unit
                else:
                    live.remove(r)
                    free[r.node] += models[r.model].gpus
                    spare.append((r.node, models[r.model].gpus))
        demands = []
        for name, m in models.items():
            mine = [r for r in live if r.model == name]
            inflight = sum(max(0.0, r.busy_until - t) for r in mine if r.busy_until is not None)
            if m.queue or inflight:
                demands.append(ModelDemand(name, m.gpus, 0.1, len(mine), None, len(m.queue),
                                           sum(m.queue) + inflight, costs.load_seconds(name) or m.load))
        if not demands:
            return t, loads, starts
        view = [NodeFree(n, free[n], 100.0, total, 100.0, warm=tuple(g for sn, g in spare if sn == n) if reuse else ())
                for n, total in nodes.items()]
        for s in plan_starts(demands, view, seconds_known=True):
            free[s.node_id] -= models[s.model].gpus
            if reuse and (s.node_id, models[s.model].gpus) in spare:
                spare.remove((s.node_id, models[s.model].gpus))
                ready = t + models[s.model].load
            else:
                starter_free = max(t, starter_free) + start_cost
                ready = starter_free + models[s.model].load
                starts += 1
            live.append(SimReplica(s.model, s.node_id, ready))
            requested[id(live[-1])] = t
            loads += 1
        upcoming = [r.ready_at for r in live if r.ready_at > t] + [r.busy_until for r in live
                                                                    if r.busy_until is not None and r.busy_until > t]
        t = min(upcoming)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--start-cost", type=float, default=0.0, help="seconds per replica process start, one at a time")
    ap.add_argument("--reuse", action="store_true", help="finished replicas' processes serve starts of their shape")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        doc = {"seed": 0, "out": tmp, "shard_size": args.shard_size, "suites": write_suites(Path(tmp)),
               "models": model_entries(1.0)}
        _, _, unit_gpu_seconds = lower_bound(spec_from_dict(doc))
        doc["models"] = model_entries(args.seconds * GPUS / unit_gpu_seconds)
        spec = spec_from_dict(doc)
        area, longest, _ = lower_bound(spec)
        units = make_units(spec, [load_suite(s, spec.seed) for s in spec.suites])
    models = {m.name: SimModel(float(m.config.tensor_parallel_size), m.config.load_seconds) for m in spec.models}
    for u in sorted(units, key=lambda u: -u.cost):
        c = next(m.config for m in spec.models if m.name == u.model)
        models[u.model].queue.append(u.tokens * c.size_b / c.tensor_parallel_size * c.seconds_per_token_b)
    nodes = {f"node{i}": GPUS / args.nodes for i in range(args.nodes)}
    makespan, loads, starts = simulate(models, nodes, args.start_cost, args.reuse)
    bound = max(area, longest)
    print(f"{args.nodes} node(s) x {GPUS // args.nodes} GPUs; {len(models)} models, {loads} loads, {starts} process "
          f"starts; start cost {args.start_cost:g} s; reuse {args.reuse}")
    print(f"lower bound {bound:.1f} s; simulated makespan {makespan:.1f} s")
    print(f"policy_makespan_ratio={makespan / bound:.3f}")


if __name__ == "__main__":
    main()
