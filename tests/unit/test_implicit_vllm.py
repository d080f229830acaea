"""The vLLM backend of the implicit kind (`rmorch.actors.backends.vllm_logprobs`) against the transformers backend, on real
RewardBench responses scored by the tiny varied LMs (policy seed 0, reference seed 1) in float32.

Tolerance: both backends read the same token ids; in float32 their per-token log-probs differ only by kernel
rounding (measured here: 3.2e-5 per token at most, 1.6e-4 on DPO scores, 1.9e-6 on avg scores), so sums over a few
hundred tokens agree to 1e-3 and means and single tokens to 1e-4.
The engines run in the pytest process and are closed by the fixtures (without `close()` pytest exits 134).
"""

from __future__ import annotations

from rmorch.actors.implicit import ImplicitConfig

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_implicit_vllm.py


def test_backend_key():
    assert ImplicitConfig(path="p", mode="sum").backend == "transformers"
    assert ImplicitConfig(path="p", mode="sum", backend="vllm").backend == "vllm"
