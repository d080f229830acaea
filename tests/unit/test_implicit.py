"""Implicit rewards (DPO log-ratio, reference-free sum/avg/norm) on real tiny LMs, against a direct transformers
computation written here, and through the whole pipeline."""

from __future__ import annotations

import math

import pytest
import torch

from rmorch.actors.backends.hf_logprobs import response_tokens
from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.implicit import Implicit, ImplicitConfig, reduce_logprobs
from rmorch.core.errors import SpecError

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_implicit.py


@pytest.fixture(scope="module")
def lms(tmp_path_factory) -> tuple[str, str]:
    from tests.tiny_models import build_tiny_causal_lm

    policy = build_tiny_causal_lm(str(tmp_path_factory.mktemp("policy")), seed=0, varied=True)
    ref = build_tiny_causal_lm(str(tmp_path_factory.mktemp("ref")), seed=1, varied=True)
    return policy, ref


def test_response_tokens_masks_the_prompt_and_truncates_prompt_first():
    r = response_tokens([1, 2, 3, 9], [1, 2, 3, 4, 5, 6], max_length=10)
    assert (r.ids, r.start, r.truncated) == ([1, 2, 3, 4, 5, 6], 3, False)
    r = response_tokens([1, 2, 3], [1, 2, 3, 4, 5, 6], max_length=5)  # one prompt token dropped, first kept
    assert (r.ids, r.start, r.truncated) == ([1, 3, 4, 5, 6], 2, True)
    r = response_tokens([1, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8], max_length=4)  # response cut at its end
    assert (r.ids, r.start, r.truncated) == ([1, 4, 5, 6], 1, True)


def test_reduce_modes():
    lp = [-1.0, -2.0, -2.0]
    assert reduce_logprobs(lp, "sum") == -5.0
    assert reduce_logprobs(lp, "avg") == pytest.approx(-5 / 3)
    assert reduce_logprobs(lp, "norm") == pytest.approx(-3.0)
    assert math.isnan(reduce_logprobs([], "sum"))


def test_config_checks():
    with pytest.raises(SpecError, match="reference"):
        ImplicitConfig(path="p")
    with pytest.raises(SpecError, match="reference-free"):
        ImplicitConfig(path="p", ref_path="r", mode="avg")


def _direct_logprob_sum(path: str, prompt: list[dict], response: str) -> float:
    """sum log p(response tokens | everything before), computed plainly: one sequence, no batching, no padding."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    p_ids = tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=False)
    f_ids = tok.apply_chat_template(prompt + [{"role": "assistant", "content": response}], tokenize=True,
                                    return_dict=False)
    assert f_ids[: len(p_ids)] == p_ids
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([f_ids])).logits[0].float(), -1)
    return float(sum(logp[t - 1, f_ids[t]] for t in range(len(p_ids), len(f_ids))))


def test_dpo_and_reference_free_equal_a_direct_computation(lms):
    policy, ref = lms
    reqs = [
        ScoreRequest("a", 0, [{"role": "user", "content": "What is 2+2?"}], "4, of course."),
        ScoreRequest("a", 1, [{"role": "user", "content": "What is 2+2?"}], "Five. Definitely five, trust me."),
        ScoreRequest("b", 0, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                              {"role": "user", "content": "Name a colour."}], "Blue"),
    ]
    ctx = ActorContext(seed=0, threads=2)
    dpo = Implicit(ImplicitConfig(path=policy, ref_path=ref, dtype="float32", batch_tokens=64, max_length=64),
                   ctx, "dpo")
    total = Implicit(ImplicitConfig(path=policy, mode="sum", dtype="float32"), ctx, "sum")
    out_dpo, out_sum = dpo.score(reqs), total.score(reqs)
    for r, d, s in zip(reqs, out_dpo, out_sum):
        lp_policy = _direct_logprob_sum(policy, list(r.prompt), r.response)
        lp_ref = _direct_logprob_sum(ref, list(r.prompt), r.response)
        assert s.score == pytest.approx(lp_policy, abs=1e-4)  # one batch of three, padded
        assert d.score == pytest.approx(lp_policy - lp_ref, abs=1e-4)  # batch_tokens 64: one sequence per batch
        assert d.scores == pytest.approx([lp_policy, lp_ref], abs=1e-4)


def test_density_ratio_equals_a_direct_computation(lms):
    from rmorch.actors.density_ratio import DensityRatio, DensityRatioConfig

    strong, weak = lms
    prompt = [{"role": "user", "content": "Name a prime number."}]
    reqs = [ScoreRequest("p", 0, prompt, "Seven."), ScoreRequest("p", 1, prompt, "Nine, which is prime.")]
    ctx = ActorContext(seed=0, threads=2)
    plain = DensityRatio(DensityRatioConfig(path=strong, weak_path=weak, dtype="float32"), ctx, "cdr")
    for r, o in zip(reqs, plain.score(reqs)):
        ls = _direct_logprob_sum(strong, prompt, r.response)
        lw = _direct_logprob_sum(weak, prompt, r.response)
        assert o.score == pytest.approx(ls - lw, abs=1e-4) and o.scores == pytest.approx([ls, lw], abs=1e-4)
    cfg = DensityRatioConfig(path=strong, weak_path=weak, dtype="float32", prefix="Be correct.", prefix_role="user")
    prefixed = DensityRatio(cfg, ctx, "cdr-prefix").score(reqs[:1])[0]
    want = [{"role": "user", "content": "Be correct.\n\nName a prime number."}]
    expected = _direct_logprob_sum(strong, want, "Seven.") - _direct_logprob_sum(weak, want, "Seven.")
    assert prefixed.score == pytest.approx(expected, abs=1e-4)
