"""The scheduler's packing: which replicas start, where and when (correctness only; speed is bench/scheduler.py).

The policy itself (rmorch.orchestrator.schedule.placement) is a pure function, checked on hand-made snapshots. The real-Ray test runs
simulated models (bench/simulated_model.py: loads and scoring sleep) through the whole pipeline on one local Ray
node with 8 logical GPUs: a tensor-parallel-4 model and six 1-GPU models, more than fit at once.
"""

from __future__ import annotations

from rmorch.orchestrator.schedule.placement import ModelDemand, NodeFree, plan_starts, useful_replicas

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_scheduler_packing.py


def demand(name, gpus, remaining, replicas=0, max_replicas=None, queued=10, load=0.0) -> ModelDemand:
    return ModelDemand(name, gpus, 1.0, replicas, max_replicas, queued, remaining, load)


def node(node_id, free_gpus, total_gpus=8) -> NodeFree:
    return NodeFree(node_id, free_gpus, 64.0, total_gpus, 64.0)


# ---- the policy -------------------------------------------------------------------------------------------------

def test_big_replicas_go_first_and_small_ones_fill_partly_used_nodes():
    # horizon = (6 x 30 + 8 x 25 + 100) / 16 GPUs = 30: no model alone outlasts it (none is critical)
    demands = [demand(f"small{i}", 1, 30.0) for i in range(6)] + [demand("tp8", 8, 25.0),
                                                                   demand("busy", 1, 100.0, replicas=5)]
    starts = plan_starts(demands, [node("a", 8), node("b", 3)], seconds_known=False)
    assert starts[0].model == "tp8" and starts[0].node_id == "a"  # although its work is shorter
    assert sorted(s.node_id for s in starts[1:]) == ["b"] * 3  # best fit: the partly used node, not a whole one


def test_a_big_replica_that_fits_nowhere_reserves_a_node():
    demands = [demand("tp8", 8, 500.0), demand("small", 1, 10.0)]
    starts = plan_starts(demands, [node("a", 6), node("b", 2)], seconds_known=False)
    assert [(s.model, s.node_id) for s in starts] == [("small", "b")]  # "a", the node nearest to free, is kept


def test_auto_replicas_cover_the_critical_path_and_explicit_counts_are_honoured():
    demands = [demand("long", 1, 300.0), demand("short", 1, 100.0), demand("fixed", 1, 10.0, max_replicas=3)]
    starts = plan_starts(demands, [node("a", 8)], seconds_known=False)
    counts = {m: sum(s.model == m for s in starts) for m in ("long", "short", "fixed")}
    # horizon = 410 GPU-s / 8 GPUs: "long" needs ceil(300 / 51.25) = 6 replicas to fit in it
    assert counts == {"long": 6, "short": 2, "fixed": 0}  # longest first; 8 GPUs run out before "fixed"
    starts = plan_starts(demands, [node("a", 32, 32)], seconds_known=False)  # room for all: 10 units each at most
    assert sum(s.model == "fixed" for s in starts) == 3  # explicit: exactly its number, however short its work


def test_idle_gpus_go_to_the_model_that_finishes_last_only_while_that_helps():
    running = [demand("a", 1, 100.0, replicas=1, load=5.0), demand("b", 1, 8.0, replicas=1, load=5.0)]
    starts = plan_starts(running, [node("n", 6)], seconds_known=True)
    assert {s.model for s in starts} == {"a"}
    assert len(starts) == useful_replicas(100.0, 5.0) - 1  # 4 replicas in all: r (r - 1) < 100 / 5
    assert plan_starts([demand("a", 1, 8.0, replicas=1, load=5.0)], [node("n", 6)], seconds_known=True) == []


def test_a_node_with_a_spare_process_of_the_same_width_is_preferred():
    from dataclasses import replace

    nodes = [node("a", 1), node("b", 2), replace(node("c", 4), warm=(2.0, 1.0))]
    starts = plan_starts([demand("one", 1, 10.0, max_replicas=2), demand("two", 2, 10.0, max_replicas=1)], nodes,
                         seconds_known=False)
    # without spares best fit would pick "a" for the first 1-GPU replica and "b" for the 2-GPU one
    assert sorted((s.model, s.node_id) for s in starts) == [("one", "a"), ("one", "c"), ("two", "c")]
