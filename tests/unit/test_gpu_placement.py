"""The pure GPU placement decisions: which replicas can work on which nodes, the vLLM memory share of a replica, and
the transformers device map of a replica with several GPUs. The same check on a real Ray instance:
tests/test_gpu_placement.py."""

from __future__ import annotations

import pytest

from rmorch.actors.backends.vllm_engine import memory_share
from rmorch.orchestrator.schedule.placement import NodeSize, ReplicaNeeds, placement_refusal, replica_gpus


def needs(tp: int = 1, num_gpus: float | None = None, backend: str = "vllm", cpus: float = 1.0,
          uses_gpu: bool = True) -> ReplicaNeeds:
    return ReplicaNeeds(model="judge", uses_gpu=uses_gpu, backend=backend, tensor_parallel_size=tp,
                        num_gpus=num_gpus, num_cpus=cpus)


TWO_GPU_NODE = [NodeSize(gpus=2, cpus=8)]
CPU_ONLY = [NodeSize(gpus=0, cpus=8)]


def test_a_tensor_parallel_replica_larger_than_any_node_is_refused_naming_the_gpus():
    refusal = placement_refusal(needs(tp=4), TWO_GPU_NODE + [NodeSize(gpus=1, cpus=16)])
    assert refusal is not None and refusal.needs_node
    assert "model 'judge' needs 4 GPU" in refusal.message
    assert "tensor_parallel_size 4" in refusal.message
    assert "the largest has 2 GPU and 8 CPU" in refusal.message


def test_tensor_parallel_on_a_cpu_only_cluster_runs_on_cpu_cores():
    assert replica_gpus(needs(tp=4), cluster_gpus=0) == 0
    assert placement_refusal(needs(tp=4), CPU_ONLY) is None
    assert replica_gpus(needs(tp=4), cluster_gpus=2) == 4  # never 0 on a cluster with GPUs


def test_a_replica_that_fits_is_not_refused():
    assert placement_refusal(needs(tp=2), TWO_GPU_NODE) is None
    assert placement_refusal(needs(num_gpus=0.5), TWO_GPU_NODE) is None
    assert placement_refusal(needs(backend="transformers", num_gpus=2), TWO_GPU_NODE) is None  # sharded
    assert placement_refusal(needs(uses_gpu=False, num_gpus=None), CPU_ONLY) is None


def test_too_few_cpus_on_every_node_is_refused():
    refusal = placement_refusal(needs(backend="none", uses_gpu=False, cpus=12), TWO_GPU_NODE)
    assert refusal is not None and refusal.needs_node and "12 CPU" in refusal.message


@pytest.mark.parametrize("spec, words", [
    (needs(num_gpus=1.5), "fraction of one GPU or whole GPUs"),
    (needs(tp=2, num_gpus=1), "num_gpus must be 2"),
    (needs(tp=2, num_gpus=4), "num_gpus must be 2"),
    (needs(num_gpus=2), "set tensor_parallel_size: 2"),
])
def test_gpu_requests_that_can_never_work_are_refused_on_any_cluster(spec, words):
    refusal = placement_refusal(spec, [NodeSize(gpus=8, cpus=64)])
    assert refusal is not None and not refusal.needs_node  # an autoscaler cannot help: refused, not warned
    assert words in refusal.message


def test_the_vllm_memory_share_follows_the_replicas_gpus():
    assert memory_share(1.0) == pytest.approx(0.9)  # vLLM's own default, alone on a GPU
    assert memory_share(0.0) == pytest.approx(0.9)  # no fraction known (a tensor-parallel rank): a whole GPU
    assert memory_share(0.5) == pytest.approx(0.45)  # two replicas on one GPU: 0.9 between them
    assert memory_share(0.25) == pytest.approx(0.225)
    assert memory_share(1.0, engines=2) == pytest.approx(0.425)  # policy + reference in one replica
    assert memory_share(0.5, engines=2) == pytest.approx(0.2125)
    assert 2 * memory_share(0.5) <= 0.9 + 1e-9 and 2 * memory_share(1.0, engines=2) < 0.9


def test_transformers_placement_shards_only_on_several_cuda_gpus_and_refuses_a_spill():
    import torch

    from rmorch.actors.backends.hf import device_placement, place_model
    from rmorch.actors.base import ActorContext
    from rmorch.core.errors import UserError

    assert device_placement(ActorContext(device="cpu", gpu_ids=(0, 1))) == {}  # logical GPUs, no CUDA: whole on CPU
    assert device_placement(ActorContext(device="cuda", gpu_ids=(0,))) == {}  # one GPU: moved there whole
    whole = place_model(torch.nn.Linear(2, 1), ActorContext(device="cpu"), sharded=False, model_name="rm")
    assert not whole.training
    # a device map as accelerate leaves it when the GPUs' budget does not hold every layer
    spilled = torch.nn.Linear(2, 1)
    spilled.hf_device_map = {"model.layers.0": 0, "model.layers.1": 1, "lm_head": "cpu"}
    with pytest.raises(UserError, match="does not fit in the 2 GPUs of its replica"):
        place_model(spilled, ActorContext(device="cuda", gpu_ids=(0, 1)), sharded=True, model_name="rm")
    spread = torch.nn.Linear(2, 1)
    spread.hf_device_map = {"model.layers.0": 0, "model.layers.1": 1}
    assert place_model(spread, ActorContext(device="cuda", gpu_ids=(0, 1)), sharded=True, model_name="rm") is spread
