"""GPU placement on a real local Ray instance with 2 logical GPUs: a tensor-parallel judge that needs more GPUs than
any node has is refused before anything loads, and a replica holding half a GPU sizes vLLM's memory share from it.
The pure decisions: tests/unit/test_gpu_placement.py."""

from __future__ import annotations

import pytest

from rmorch.core.errors import UserError
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-lm")), seed=0)


def test_a_tp4_judge_on_a_2_gpu_node_is_refused_before_anything_loads(local_ray, tiny_lm, rewardbench_file,
                                                                      tmp_path):
    spec = spec_from_dict({
        "out": str(tmp_path / "out"), "seed": 0, "resamples": 0,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [{"name": "big-judge", "kind": "judge", "path": tiny_lm, "tensor_parallel_size": 4,
                    "num_cpus": 1, "dtype": "float32", "max_tokens": 4, "max_model_len": 512}],
    })
    with pytest.raises(UserError) as refused:
        run_sweep(spec)
    message = str(refused.value)
    assert "model 'big-judge' needs 4 GPU" in message and "tensor_parallel_size 4" in message
    assert "the largest has 2 GPU" in message
    assert not (tmp_path / "out" / "results").exists()  # no unit ran
    assert local_ray.available_resources().get("GPU", 0) == 2  # no replica took a GPU


def test_a_replica_on_half_a_gpu_gets_half_of_vllms_memory_share(local_ray):
    @local_ray.remote(num_gpus=0.5, num_cpus=0)
    def share(engines: int) -> float:
        from rmorch.actors.backends.vllm_engine import memory_share, replica_gpu_fraction

        return memory_share(replica_gpu_fraction(), engines)

    assert local_ray.get(share.remote(1)) == pytest.approx(0.45)
    assert local_ray.get(share.remote(2)) == pytest.approx(0.2125)
    from rmorch.actors.backends.vllm_engine import replica_gpu_fraction

    assert replica_gpu_fraction() == 0.0  # the driver holds no GPU (and Ray would refuse to say so)
