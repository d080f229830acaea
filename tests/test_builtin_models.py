"""Built-in model resolution (actors/backends/builtin.py) and the tiny test models (tests/tiny_models.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rmorch.actors.backends import builtin
from rmorch.actors.backends.builtin import MARKER, resolve_model_path
from tests.unit.test_builtin_models import CONVS

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_builtin_models.py

REPO = Path(__file__).resolve().parent.parent


def test_builtin_module_imports_without_torch():
    code = "import sys, rmorch.actors.backends.builtin; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_smollm2_converts_once_and_loads(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models = tmp_path / "models"
    target = models / "smollm2-135m-instruct"
    # Leftovers of a crashed earlier run: a half-written target without marker and a stale temp dir.
    target.mkdir(parents=True)
    (target / "config.json").write_text("{")
    (models / ".smollm2-135m-instruct.tmp-crashed").mkdir()

    d = resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=str(tmp_path))
    assert Path(d) == target
    marker = json.loads((target / MARKER).read_text())
    source = builtin.builtin_source_file("smollm2-135m-instruct")
    assert marker["source_file"] == source.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert marker["source_size"] == source.stat().st_size
    assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == ["smollm2-135m-instruct"]

    tok = AutoTokenizer.from_pretrained(d)
    assert "<|im_start|>" in tok.chat_template
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    text = tok.apply_chat_template(CONVS[0], tokenize=False)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\nParis.<|im_end|>\n")
    model = AutoModelForCausalLM.from_pretrained(d)
    assert model.config.num_hidden_layers == 30 and str(model.dtype) == "torch.bfloat16"
    assert model.config.pad_token_id == tok.pad_token_id
    del model

    # A second call finds the converted copy and does not convert again.
    mtime = (target / "model.safetensors").stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(builtin, "_convert_gguf", no_conversion)
    assert resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=str(tmp_path)) == d
    assert (target / "model.safetensors").stat().st_mtime_ns == mtime
    assert json.loads((target / MARKER).read_text()) == marker
    # $RMORCH_CACHE is the default cache.
    monkeypatch.setenv("RMORCH_CACHE", str(tmp_path))
    assert resolve_model_path("builtin:smollm2-135m-instruct") == d
    assert os.path.isdir(d)
