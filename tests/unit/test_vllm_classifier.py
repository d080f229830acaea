"""The vLLM pooling backend of the classifier kind against the transformers backend, on real RewardBench items.

The engine runs in the pytest process (vLLM starts its engine core by spawn; pytest's entry point is guarded) and is
shut down at the end of the module so pytest exits 0 rather than 134.
"""

from __future__ import annotations

import pytest

from rmorch.actors.classifier import ClassifierConfig

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_vllm_classifier.py


def test_vllm_spec_keys_are_validated():
    from rmorch.core.errors import SpecError

    cfg = ClassifierConfig(path="x", backend="vllm", tensor_parallel_size=2)
    assert (cfg.backend, cfg.tensor_parallel_size) == ("vllm", 2)
    with pytest.raises(SpecError, match="tensor_parallel_size"):
        ClassifierConfig(path="x", tensor_parallel_size=2)  # transformers has no tensor parallelism
    with pytest.raises(SpecError, match="tensor_parallel_size"):
        ClassifierConfig(path="x", backend="vllm", tensor_parallel_size=0)
