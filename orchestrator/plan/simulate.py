"""The scheduler's policy played out in pure Python on a described cluster: when each replica starts, loads, scores
and is released, and so when the sweep's scheduling ends (its makespan, start-up and report aside).

It uses the scheduler's own pieces: the packing policy (rmorch.orchestrator.schedule.placement.plan_starts) asked
after every event, the cost model (rmorch.orchestrator.plan.costs.CostModel) fed each simulated load and unit as the
scheduler feeds it with measured ones, and the same demand (queued cost x seconds per cost unit, plus what is left
of the units in flight). Each model's queue is longest unit first; a replica takes the next unit when it finishes
one and is released when its model's queue is empty. Simplifications: one unit in flight per replica (the
scheduler keeps two while the queue is long, which hides the driver's round trip), no process reuse between models,
no failures.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace

from rmorch.orchestrator.plan.costs import CostModel
from rmorch.orchestrator.schedule.placement import ModelDemand, NodeFree, plan_starts


@dataclass(frozen=True)
class SimModel:
    name: str
    gpus: float  # per replica
    cpus: float
    max_replicas: int | None  # the spec's explicit `replicas`; None = auto
    start_seconds: float  # requesting a replica -> its first unit
    units: tuple[tuple[float, float], ...]  # (cost, scoring seconds of one replica) per unit


@dataclass
class ModelTimeline:
    name: str
    first_requested: float | None = None
    first_ready: float | None = None
    end: float = 0.0  # its last replica released
    replicas: int = 0  # started in all
    scoring_seconds: float = 0.0  # replica-seconds spent scoring
    held_gpu_seconds: float = 0.0  # GPU-seconds its replicas held (loading and scoring)
    units_done: int = 0


@dataclass
class SimResult:
    makespan_seconds: float  # first replica requested -> last released
    models: dict[str, ModelTimeline]
    unfinished: list[str] = field(default_factory=list)  # models the policy never placed (nothing could hold them)

    @property
    def held_gpu_seconds(self) -> float:
        return sum(m.held_gpu_seconds for m in self.models.values())

    def last_model(self) -> ModelTimeline | None:
        done = [m for m in self.models.values() if m.units_done]
        return max(done, key=lambda m: (m.end, m.name)) if done else None


@dataclass
class _Replica:
    model: str
    node_id: str
    requested: float
    working_on: tuple[float, float] | None = None  # (cost, seconds) of the unit in flight
    unit_started: float = 0.0


def simulate(models: list[SimModel], nodes: list[NodeFree]) -> SimResult:
    """Play the policy on `nodes` (all free at time 0) until every model's units are done."""
    spec = {m.name: m for m in models}
    queues = {m.name: sorted(m.units, key=lambda u: -u[0]) for m in models if m.units}
    queued_cost = {name: sum(c for c, _ in q) for name, q in queues.items()}
    timelines = {m.name: ModelTimeline(m.name) for m in models}
    costs = CostModel({m.name: m.gpus for m in models})
    free = {n.node_id: n for n in nodes}
    live: list[_Replica] = []
    events: list[tuple[float, int, str, _Replica]] = []  # (time, sequence, "ready" | "unit", replica)
    seq = 0
    now = 0.0

    def push(t: float, what: str, r: _Replica) -> None:
        nonlocal seq
        heapq.heappush(events, (t, seq, what, r))
        seq += 1

    def demand(name: str) -> ModelDemand:
        m = spec[name]
        rate = costs.seconds_per_cost(name)
        mine = [r for r in live if r.model == name]
        remaining = queued_cost.get(name, 0.0) * rate
        for r in mine:
            if r.working_on is not None:
                remaining += max(0.0, r.working_on[0] * rate - (now - r.unit_started))
        return ModelDemand(name, m.gpus, m.cpus, len(mine), m.max_replicas, len(queues.get(name, ())), remaining,
                           costs.load_seconds(name) if costs.known else 0.0)

    def place() -> None:
        wanted = [n for n in spec if queues.get(n) or any(r.model == n and r.working_on for r in live)]
        if not wanted:
            return
        for s in plan_starts([demand(n) for n in wanted], list(free.values()), costs.known):
            m = spec[s.model]
            node = free[s.node_id]
            free[s.node_id] = replace(node, gpus=node.gpus - m.gpus, cpus=node.cpus - m.cpus)
            r = _Replica(s.model, s.node_id, now)
            live.append(r)
            t = timelines[s.model]
            t.replicas += 1
            if t.first_requested is None:
                t.first_requested = now
            push(now + m.start_seconds, "ready", r)

    def release(r: _Replica) -> None:
        m = spec[r.model]
        live.remove(r)
        node = free[r.node_id]
        free[r.node_id] = replace(node, gpus=node.gpus + m.gpus, cpus=node.cpus + m.cpus)
        t = timelines[r.model]
        t.end = max(t.end, now)
        t.held_gpu_seconds += m.gpus * (now - r.requested)

    def next_unit(r: _Replica) -> None:
        queue = queues.get(r.model)
        if not queue:
            r.working_on = None
            release(r)
            return
        unit = queue.pop(0)
        queued_cost[r.model] -= unit[0]
        r.working_on, r.unit_started = unit, now
        push(now + unit[1], "unit", r)

    place()
    while events:
        now, _, what, r = heapq.heappop(events)
        t = timelines[r.model]
        if what == "ready":
            costs.record_load(r.model, now - r.requested)
            if t.first_ready is None:
                t.first_ready = now
        else:
            cost, seconds = r.working_on  # type: ignore[misc]
            costs.record_unit(r.model, cost, seconds)
            t.scoring_seconds += seconds
            t.units_done += 1
        next_unit(r)
        if not events or events[0][0] > now:  # the scheduler decides once the events of this instant are in
            place()
    unfinished = [n for n, q in queues.items() if q]
    end = max((t.end for t in timelines.values()), default=0.0)
    return SimResult(end, timelines, unfinished)
