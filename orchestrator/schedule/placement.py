"""Which replicas to start now, and on which node: the scheduler's packing policy, as a pure function.

Input: a snapshot of every model with work left (its remaining work in estimated replica-seconds, replicas it has,
GPUs and CPUs per replica) and of the free resources of every node. Output: replicas to start, each on a node.

- Horizon: the fluid remaining time, `(remaining GPU-seconds of all models + one load per model not started) /
  GPUs`: the sweep cannot end earlier, and a model whose own remaining time per replica is longer is on the
  critical path.
- Replicas wanted: an explicit `replicas: k` is honoured (bounded by the units left); `auto` asks for enough
  replicas that the model's remaining time per replica, after a load, fits in the horizon. Replicas that hold no
  GPU (baselines, API clients) get one.
- Order: longest projected remaining time first (LPT), except that replicas that need half a node or more go
  before smaller ones: started late they would find no node empty enough.
- Packing: best fit (the node left with the fewest free GPUs), so small replicas fill partly used nodes and
  whole nodes stay whole. A large replica that fits nowhere reserves the node with the most free GPUs: nothing
  new starts there until it has drained enough for it.
- Filling: once every model has what it wants, free GPUs that would otherwise idle go to one more replica of the
  model that finishes last, as long as that replica (after its load) shortens the model's remaining time; when
  it would not, the sweep's end is set by that model and more replicas of others cannot move it. This needs
  measured seconds (`seconds_known`); before that only the first pass runs.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, replace

from rmorch.actors import get_kind
from rmorch.core.model_spec import ModelSpec

EPS = 1e-9


@dataclass(frozen=True)
class ModelDemand:
    """One model with work left, as the scheduler sees it now."""

    name: str
    gpus: float  # per replica (a tensor-parallel replica: all its ranks)
    cpus: float  # per replica
    replicas: int  # live or starting
    max_replicas: int | None  # the spec's explicit `replicas`; None = auto
    units_queued: int  # units not yet handed to a replica
    remaining_seconds: float  # estimated replica-seconds of its queued and in-flight units
    load_seconds: float  # expected seconds from requesting one more replica to its first unit


@dataclass(frozen=True)
class NodeFree:
    node_id: str
    gpus: float  # free now
    cpus: float
    total_gpus: float
    total_cpus: float
    warm: tuple[float, ...] = ()  # GPUs of each spare replica process here (a start of that width reuses one)


@dataclass(frozen=True)
class Start:
    model: str
    node_id: str


def plan_starts(demands: list[ModelDemand], nodes: list[NodeFree], seconds_known: bool) -> list[Start]:
    """Replicas to start now (see the module docstring for the policy)."""
    on_gpus = sum(n.total_gpus for n in nodes) > 0
    capacity = sum(n.total_gpus if on_gpus else n.total_cpus for n in nodes)
    if capacity <= 0:
        return []
    largest_node = max(n.total_gpus if on_gpus else n.total_cpus for n in nodes)

    def width(d: ModelDemand) -> float:
        return d.gpus if on_gpus else d.cpus

    def big(d: ModelDemand) -> bool:
        return width(d) > 1 and width(d) >= largest_node / 2

    horizon = sum(d.remaining_seconds * width(d) + (d.load_seconds * width(d) if d.replicas == 0 else 0.0)
                  for d in demands) / capacity
    free = {n.node_id: n for n in nodes}
    reserved: set[str] = set()
    starts: list[Start] = []
    count = {d.name: d.replicas for d in demands}

    def span(d: ModelDemand) -> float:
        r = count[d.name]
        return d.remaining_seconds / r if r else d.load_seconds + d.remaining_seconds

    def new_replica_room(d: ModelDemand) -> bool:  # a new replica must find a unit nobody holds yet
        return count[d.name] - d.replicas < d.units_queued

    def wanted(d: ModelDemand) -> int:
        if d.max_replicas is not None:
            return d.max_replicas
        if width(d) <= 0:
            return 1
        load = d.load_seconds if seconds_known else 0.0
        room = horizon - load
        fit = math.ceil(d.remaining_seconds / room - EPS) if room > EPS else math.inf
        return max(1, min(fit, useful_replicas(d.remaining_seconds, load)))

    def place(d: ModelDemand) -> bool:
        node = _best_fit(d, free.values(), reserved)
        if node is None:
            return False
        warm = list(node.warm)
        if d.gpus in warm:
            warm.remove(d.gpus)
        free[node.node_id] = replace(node, gpus=node.gpus - d.gpus, cpus=node.cpus - d.cpus, warm=tuple(warm))
        count[d.name] += 1
        starts.append(Start(d.name, node.node_id))
        return True

    # Pass 1: what every model wants, largest-first then longest-first.
    heap = [(-big(d), -span(d), d.name, i) for i, d in enumerate(demands)
            if count[d.name] < wanted(d) and new_replica_room(d)]
    heapq.heapify(heap)
    while heap:
        _, _, _, i = heapq.heappop(heap)
        d = demands[i]
        if place(d):
            if count[d.name] < wanted(d) and new_replica_room(d):
                heapq.heappush(heap, (-big(d), -span(d), d.name, i))
        elif big(d):
            _reserve(d, free.values(), reserved)

    # Pass 2: GPUs that would idle go to one more replica of the model that finishes last, if that shortens it.
    if not seconds_known:
        return starts
    candidates = [d for d in demands if d.max_replicas is None and width(d) > 0 and count[d.name] > 0]
    while candidates:
        d = max(candidates, key=span)
        r = count[d.name]
        if span(d) - (d.load_seconds + d.remaining_seconds / (r + 1)) <= EPS:
            break  # the model that finishes last would not finish earlier: more replicas elsewhere cannot help
        if not new_replica_room(d) or not place(d):
            candidates.remove(d)
    return starts


def useful_replicas(remaining_seconds: float, load_seconds: float) -> float:
    """The most replicas that still shorten a model's remaining time: going from r - 1 to r replicas helps while
    remaining / (r - 1) > load + remaining / r, i.e. r (r - 1) < remaining / load."""
    if load_seconds <= EPS:
        return math.inf
    x = remaining_seconds / load_seconds
    return max(1, math.ceil((1 + math.sqrt(1 + 4 * x)) / 2) - 1)


def _best_fit(d: ModelDemand, nodes, reserved: set[str]) -> NodeFree | None:
    """The node left with the fewest free GPUs after `d`, preferring one with a spare process of `d`'s width."""
    fits = [n for n in nodes if n.node_id not in reserved and n.gpus >= d.gpus - EPS and n.cpus >= d.cpus - EPS]
    if not fits:
        return None
    return min(fits, key=lambda n: (d.gpus not in n.warm, n.gpus - d.gpus, n.cpus - d.cpus, n.node_id))


def _reserve(d: ModelDemand, nodes, reserved: set[str]) -> None:
    """Keep the node closest to holding `d` for it: nothing else starts there while `d` waits."""
    could = [n for n in nodes if n.node_id not in reserved and n.total_gpus >= d.gpus - EPS
             and n.total_cpus >= d.cpus - EPS]
    if could:
        reserved.add(max(could, key=lambda n: (n.gpus, n.cpus, n.node_id)).node_id)


# ---- Before anything loads: can a replica of each model work on this cluster at all? ----------------------------


@dataclass(frozen=True)
class ReplicaNeeds:
    """What the placement check knows of one model: its kind's GPU use and backend, and the spec's resources."""

    model: str
    uses_gpu: bool  # the kind can use a GPU (baselines and API clients cannot)
    backend: str  # transformers | vllm | openai | none
    tensor_parallel_size: int
    num_gpus: float | None  # the spec's; None = the default (replica_gpus)
    num_cpus: float


@dataclass(frozen=True)
class NodeSize:
    gpus: float
    cpus: float


@dataclass(frozen=True)
class Refusal:
    """Why a model cannot run here. `needs_node`: only because no node is large enough yet (an autoscaler may add
    one); otherwise the spec asks for something that can never work."""

    message: str
    needs_node: bool = False


def replica_needs(spec: ModelSpec) -> ReplicaNeeds:
    """What the placement rules know of a model spec (its kind's GPU use, backend and tensor parallelism)."""
    kind = get_kind(spec.kind)
    caps = kind.capabilities(spec.config)
    return ReplicaNeeds(model=spec.name, uses_gpu=kind.uses_gpu, backend=caps.backend,
                        tensor_parallel_size=caps.tensor_parallel_size, num_gpus=spec.resources.num_gpus,
                        num_cpus=spec.resources.num_cpus)


def replica_gpus(needs: ReplicaNeeds, cluster_gpus: float) -> float:
    """GPUs one replica holds: the spec's `num_gpus`; else one per tensor-parallel rank on a cluster with GPUs, and
    none on a CPU-only cluster (tensor-parallel models then run their ranks on CPU cores)."""
    if not needs.uses_gpu:
        return 0.0
    if needs.num_gpus is not None:
        return needs.num_gpus
    return float(needs.tensor_parallel_size) if cluster_gpus > 0 else 0.0


def placement_refusal(needs: ReplicaNeeds, nodes: list[NodeSize]) -> Refusal | None:
    """Why no replica of this model can work on a cluster of these nodes (None: one can).

    - GPUs above one must be whole (Ray's rule for one actor).
    - A tensor-parallel replica takes one whole GPU per rank: `num_gpus` is its size or left out.
    - A vLLM replica without tensor parallelism uses one GPU: more would idle (set tensor_parallel_size instead).
    - The replica must fit on one node; else `needs_node`, with the largest node named."""
    cluster_gpus = sum(n.gpus for n in nodes)
    gpus = replica_gpus(needs, cluster_gpus)
    tp = needs.tensor_parallel_size
    name = f"model '{needs.model}'"
    if gpus > 1 and gpus != int(gpus):
        return Refusal(f"{name}: num_gpus {gpus:g}: a replica takes a fraction of one GPU or whole GPUs")
    if gpus > 0 and tp > 1 and gpus != tp:
        return Refusal(f"{name}: tensor_parallel_size {tp} takes one whole GPU per rank: num_gpus must be {tp} "
                       f"(or left out), not {gpus:g}")
    if needs.backend == "vllm" and tp == 1 and gpus > 1:
        return Refusal(f"{name}: num_gpus {gpus:g} with tensor_parallel_size 1: a vLLM engine uses one GPU, the "
                       f"others would idle; set tensor_parallel_size: {gpus:g} to shard the model over them")
    if any(n.gpus >= gpus - EPS and n.cpus >= needs.num_cpus - EPS for n in nodes):
        return None
    where = f" on one node (tensor_parallel_size {tp})" if tp > 1 else ""
    largest = max(nodes, key=lambda n: (n.gpus, n.cpus), default=NodeSize(0.0, 0.0))
    return Refusal(f"{name} needs {gpus:g} GPU and {needs.num_cpus:g} CPU per replica{where}, but no node of "
                   f"this Ray cluster has that much: the largest has {largest.gpus:g} GPU and {largest.cpus:g} CPU",
                   needs_node=True)
