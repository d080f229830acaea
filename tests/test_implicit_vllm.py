"""The vLLM backend of the implicit kind (`rmorch.actors.backends.vllm_logprobs`) against the transformers backend, on real
RewardBench responses scored by the tiny varied LMs (policy seed 0, reference seed 1) in float32.

Tolerance: both backends read the same token ids; in float32 their per-token log-probs differ only by kernel
rounding (measured here: 3.2e-5 per token at most, 1.6e-4 on DPO scores, 1.9e-6 on avg scores), so sums over a few
hundred tokens agree to 1e-3 and means and single tokens to 1e-4.
The engines run in the pytest process and are closed by the fixtures (without `close()` pytest exits 134).
"""

from __future__ import annotations

import time

import pytest

from rmorch.actors.base import ActorContext
from rmorch.actors.implicit import Implicit, ImplicitConfig
from rmorch.actors.worker import shard_requests
from rmorch.suites import get_suite_class

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_implicit_vllm.py

N_REQUESTS = 12
SUM_TOL = 1e-3  # DPO scores: sums of log-prob differences over up to ~500 tokens
AVG_TOL = 1e-4  # avg scores and single tokens


@pytest.fixture(scope="module")
def lms(tmp_path_factory) -> tuple[str, str]:
    from tests.tiny_models import build_tiny_causal_lm

    policy = build_tiny_causal_lm(str(tmp_path_factory.mktemp("policy")), seed=0, varied=True)
    ref = build_tiny_causal_lm(str(tmp_path_factory.mktemp("ref")), seed=1, varied=True)
    return policy, ref


@pytest.fixture(scope="module")
def rb_requests(rewardbench_file):
    suite = get_suite_class("rewardbench")()
    items = suite.sample(suite.load(str(rewardbench_file.parent)), 1, seed=0)
    return shard_requests(items)[:N_REQUESTS]


def _cfg(lms, backend: str, mode: str = "dpo") -> ImplicitConfig:
    policy, ref = lms
    return ImplicitConfig(path=policy, ref_path=ref if mode == "dpo" else None, mode=mode, backend=backend,
                          dtype="float32", max_length=512, batch_tokens=4096)


@pytest.fixture(scope="module")
def vllm_dpo(lms):
    t0 = time.perf_counter()
    model = Implicit(_cfg(lms, "vllm"), ActorContext(seed=0, threads=2), "dpo-vllm")
    print(f"two vLLM engines started in {time.perf_counter() - t0:.1f} s")
    yield model
    model.close()


@pytest.fixture(scope="module")
def vllm_avg(lms):
    model = Implicit(_cfg(lms, "vllm", "avg"), ActorContext(seed=0, threads=2), "avg-vllm")
    yield model
    model.close()


@pytest.mark.slow
def test_vllm_dpo_matches_transformers_in_float32(vllm_dpo, lms, rb_requests):
    hf = Implicit(_cfg(lms, "transformers"), ActorContext(seed=0, threads=2), "dpo-hf")
    t0 = time.perf_counter()
    ref = hf.score(rb_requests)
    t1 = time.perf_counter()
    got = vllm_dpo.score(rb_requests)
    t2 = time.perf_counter()
    print(f"scoring {len(rb_requests)} requests (DPO): transformers {t1 - t0:.2f} s, vLLM {t2 - t1:.2f} s")
    assert [(o.n_tokens, o.truncated) for o in got] == [(o.n_tokens, o.truncated) for o in ref]
    diff = max(abs(a.score - b.score) for a, b in zip(got, ref))
    parts = max(abs(x - y) for a, b in zip(got, ref) for x, y in zip(a.scores, b.scores))
    print(f"max |DPO(vLLM) - DPO(transformers)| = {diff:.2e}; max over [policy sum, ref sum] = {parts:.2e}")
    assert diff < SUM_TOL and parts < SUM_TOL
    assert len({round(o.score, 2) for o in got}) > 3  # the scores vary: the comparison is not trivial
    assert any(o.truncated for o in got)  # the 512-token limit bites on some items: truncation took the same path

    # Per token, on the same encodings: every response token's log-prob agrees.
    encoded = [hf.policy.encode(r) for r in rb_requests]
    assert [vllm_dpo.policy.encode(r) for r in rb_requests] == encoded
    per_token = 0.0
    for a, b in ((vllm_dpo.policy, hf.policy), (vllm_dpo.reference, hf.reference)):
        for x, y in zip(a.token_logprobs(encoded), b.token_logprobs(encoded), strict=True):
            assert len(x) == len(y) > 0
            per_token = max(per_token, max(abs(u - v) for u, v in zip(x, y)))
    print(f"max per-token |log p(vLLM) - log p(transformers)| = {per_token:.2e}")
    assert per_token < AVG_TOL

    s = vllm_dpo.settings()
    assert (s.backend, s.dtype, s.max_length, s.chat_template) == ("vllm", "float32", 512, "tokenizer")
    assert hf.settings().backend == "transformers"
    # One batched call gives what single-request calls give.
    alone = [vllm_dpo.score([r])[0].score for r in rb_requests[:3]]
    assert alone == pytest.approx([o.score for o in got[:3]], abs=SUM_TOL)
    assert vllm_dpo.score([]) == []


@pytest.mark.slow
def test_vllm_avg_matches_transformers_in_float32(vllm_avg, lms, rb_requests):
    hf = Implicit(_cfg(lms, "transformers", "avg"), ActorContext(seed=0, threads=2), "avg-hf")
    ref, got = hf.score(rb_requests), vllm_avg.score(rb_requests)
    assert vllm_avg.reference is None and vllm_avg.settings().backend == "vllm"
    assert [(o.n_tokens, o.truncated) for o in got] == [(o.n_tokens, o.truncated) for o in ref]
    diff = max(abs(a.score - b.score) for a, b in zip(got, ref))
    print(f"max |avg(vLLM) - avg(transformers)| = {diff:.2e}")
    assert diff < AVG_TOL
