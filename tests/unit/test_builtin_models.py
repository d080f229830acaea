"""Built-in model resolution (actors/backends/builtin.py) and the tiny test models (tests/tiny_models.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmorch.actors.backends.builtin import BUILTIN_MODELS, resolve_model_path
from rmorch.core.errors import UserError
from tests.tiny_models import build_tiny_causal_lm, build_tiny_classifier, build_tiny_tokenizer

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_builtin_models.py
CONVS = [
    [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "Paris."}],
    [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": "London."}],
    [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "def add(a, b): return a + b"}],
]


def _scores(model_dir: str) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    texts = [tok.apply_chat_template(c, tokenize=False) for c in CONVS]
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.squeeze(-1).tolist()


# -- tiny models ----------------------------------------------------------------------------------------------------


def test_tiny_classifier_builds_loads_and_is_deterministic(tmp_path):
    a = build_tiny_classifier(tmp_path / "a", seed=0)
    b = build_tiny_classifier(tmp_path / "b", seed=0)
    c = build_tiny_classifier(tmp_path / "c", seed=1)
    sa, sb, sc = _scores(a), _scores(b), _scores(c)
    assert len(sa) == len(CONVS)
    assert sa == sb  # same seed, same weights, same tokenizer: bit-identical scores
    assert sa != sc
    assert len(set(sa)) == len(sa)  # distinct inputs get distinct scores
    assert (Path(a) / "model.safetensors").read_bytes() == (Path(b) / "model.safetensors").read_bytes()
    assert (Path(a) / "tokenizer.json").read_bytes() == (Path(b) / "tokenizer.json").read_bytes()

    config = json.loads((Path(a) / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert len(config["id2label"]) == 1  # num_labels=1
    assert config["head_dim"] == 64 and config["pad_token_id"] == 0 and config["max_position_embeddings"] == 2048

    # A second build into the same directory reuses it.
    mtime = (Path(a) / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_classifier(a, seed=0) == a
    assert (Path(a) / "model.safetensors").stat().st_mtime_ns == mtime
    # A different seed into the same directory replaces the build.
    build_tiny_classifier(a, seed=1)
    assert _scores(a) == sc
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind


def test_tiny_classifier_refuses_foreign_directory(tmp_path):
    (tmp_path / "mine.txt").write_text("not a model")
    with pytest.raises(FileExistsError):
        build_tiny_classifier(tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "not a model"


def test_tiny_tokenizer_chat_template_and_special_tokens(tmp_path):
    tok = build_tiny_tokenizer(tmp_path / "tok")
    assert 256 < len(tok) <= 1000
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    text = tok.apply_chat_template(CONVS[0], tokenize=False)
    assert text == (
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n"
    )
    prompt = tok.apply_chat_template(CONVS[0][:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tok("hello").input_ids[0] != tok.bos_token_id  # the tokenizer itself adds no bos
    assert tok.decode(tok(text).input_ids) == text
    with_bos = build_tiny_tokenizer(tmp_path / "bos", add_bos=True)
    assert with_bos("hello").input_ids[0] == with_bos.bos_token_id


def test_tiny_causal_lm_generates(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = build_tiny_causal_lm(tmp_path / "lm", seed=0)
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d).eval()
    enc = tok(tok.apply_chat_template(CONVS[0][:1], tokenize=False, add_generation_prompt=True), return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > enc.input_ids.shape[1]


# -- resolve_model_path ---------------------------------------------------------------------------------------------


def test_non_builtin_paths_pass_through(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert resolve_model_path("Skywork/Skywork-Reward-V2-Llama-3.1-8B") == "Skywork/Skywork-Reward-V2-Llama-3.1-8B"


def test_unknown_builtin_raises_user_error_naming_known_models():
    with pytest.raises(UserError) as info:
        resolve_model_path("builtin:nope")
    message = str(info.value)
    assert "nope" in message
    for name in BUILTIN_MODELS:
        assert name in message
    with pytest.raises(UserError, match="did you mean 'smollm2-135m-instruct'"):
        resolve_model_path("builtin:smollm2-135m")
