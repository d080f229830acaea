"""The scheduler's own view of the cluster: the GPUs and CPUs of every live node, minus what its replicas hold.

The view starts from `ray.nodes()` (total resources of the live nodes) and is kept by the scheduler itself: a
replica it starts is pinned to the node the view chose (a hard node affinity, or a placement group whose bundles
select that node's id label), so Ray places it exactly where the accounting says. `refresh()` re-reads the node
list, so nodes that join later (an autoscaling cluster) are used and nodes that died are forgotten. The sweep is
assumed to own the resources it sees; anything else holding them only makes a pinned replica wait for its node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rmorch.orchestrator.schedule.placement import NodeFree

NODE_ID_LABEL = "ray.io/node-id"


@dataclass
class NodeAccount:
    total_gpus: float
    total_cpus: float
    used_gpus: float = 0.0
    used_cpus: float = 0.0


class ClusterView:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeAccount] = {}
        self.refresh()

    def refresh(self) -> set[str]:
        """Re-read the live nodes; returns the ids of nodes that are gone since the last look."""
        alive = {n["NodeID"]: n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")}
        gone = set(self.nodes) - set(alive)
        for node_id in gone:
            del self.nodes[node_id]
        for node_id, res in alive.items():
            if node_id not in self.nodes:
                self.nodes[node_id] = NodeAccount(float(res.get("GPU", 0)), float(res.get("CPU", 0)))
        return gone

    @property
    def total_gpus(self) -> float:
        return sum(n.total_gpus for n in self.nodes.values())

    def free(self) -> list[NodeFree]:
        return [NodeFree(node_id, n.total_gpus - n.used_gpus, n.total_cpus - n.used_cpus, n.total_gpus,
                         n.total_cpus) for node_id, n in sorted(self.nodes.items())]

    def hold(self, node_id: str | None, gpus: float, cpus: float) -> None:
        if node_id in self.nodes:
            self.nodes[node_id].used_gpus += gpus
            self.nodes[node_id].used_cpus += cpus

    def release(self, node_id: str | None, gpus: float, cpus: float) -> None:
        if node_id in self.nodes:
            n = self.nodes[node_id]
            n.used_gpus = max(0.0, n.used_gpus - gpus)
            n.used_cpus = max(0.0, n.used_cpus - cpus)


def pin_to_node(node_id: str | None) -> dict[str, Any]:
    """Actor options that place a single-actor replica on `node_id` (none: Ray decides)."""
    return {} if node_id is None else {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


def packed_group(bundles: list[dict[str, float]], node_id: str | None, name: str) -> PlacementGroup:
    """A STRICT_PACK placement group of `bundles`, on `node_id` when given (Ray versions without bundle label
    selectors get an unpinned group: still one node, chosen by Ray)."""
    if node_id is not None:
        try:
            return placement_group(bundles, strategy="STRICT_PACK", name=name,
                                   bundle_label_selector=[{NODE_ID_LABEL: node_id}] * len(bundles))
        except TypeError:
            pass
    return placement_group(bundles, strategy="STRICT_PACK", name=name)
