"""Loading untrusted model files: pickle weights only with `allow_pickle: true`, a checkpoint's own code only with
`trust_remote_code: true` (rmorch.actors.backends.model_files), for every kind that loads weights and both backends.

Real tiny models on disk: the safetensors builds of tests/tiny_models.py, the same weights re-saved as pickle
(`pytorch_model.bin`, what `save_pretrained(safe_serialization=False)` wrote before transformers 5), and a model
whose config.json asks for custom code (configuration_tiny_rm.py / modeling_tiny_rm.py via auto_map). Hub ids are
covered by the loaders' flags only (use_safetensors, load_format), which cannot be exercised offline.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import ClassVar

import pytest
import torch

from rmorch.actors.backends import vllm_engine
from rmorch.actors.backends.model_files import check_model_files, vllm_load_format
from rmorch.actors.classifier import Classifier, ClassifierConfig
from rmorch.actors.gpm import Gpm, GpmConfig
from rmorch.actors.implicit import Implicit, ImplicitConfig
from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.core.errors import UserError
from tests.unit import test_model_loading_safety as fast
from tests.unit.test_model_loading_safety import CODE_RAN, CTX, SMALL, _kinds

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_model_loading_safety.py
lm = fast.lm  # a fixture shared with the fast tier
pickle_classifier = fast.pickle_classifier  # a fixture shared with the fast tier
pickle_lm = fast.pickle_lm  # a fixture shared with the fast tier
custom_classifier = fast.custom_classifier  # a fixture shared with the fast tier


@pytest.fixture
def nothing_loads(monkeypatch):
    """Any attempt to read a model (transformers, torch.load, a vLLM engine) fails the test: the checks must come
    first."""
    import transformers
    import vllm

    def boom(*args, **kwargs):
        raise AssertionError(f"a model file was read before the check refused it: {args[:1]}")

    for cls in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.AutoModel,
                transformers.AutoModelForCausalLM, transformers.AutoModelForSequenceClassification):
        monkeypatch.setattr(cls, "from_pretrained", boom)
    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(vllm, "LLM", boom)
    starts = vllm_engine.engine_starts()
    yield
    assert vllm_engine.engine_starts() == starts


@pytest.mark.parametrize("kind", ["classifier", "classifier-vllm", "implicit", "implicit-vllm", "density_ratio",
                                  "preference", "gpm", "judge-vllm"])
def test_pickle_only_weights_are_refused_before_anything_loads(kind, pickle_classifier, pickle_lm, lm,
                                                               nothing_loads):
    with pytest.raises(UserError) as e:
        _kinds(pickle_classifier, pickle_lm, lm)[kind]()
    msg = str(e.value)
    assert msg.startswith("model 'pk': ")
    assert "holds only pickle weights (pytorch_model.bin)" in msg
    assert "`allow_pickle: true`" in msg


def test_rmorch_generate_refuses_pickle_only_and_custom_code_policies(pickle_lm, custom_classifier, tmp_path,
                                                                      nothing_loads):
    """`rmorch generate` has no opt-in keys: its policy must be safetensors without custom code."""
    from rmorch.orchestrator.generate import GenerateConfig, start_policy

    for model, what in ((pickle_lm, "holds only pickle weights"), (custom_classifier, "asks for custom model code")):
        with pytest.raises(UserError, match=f"model 'policy': .*{what}"):
            start_policy(GenerateConfig(model=model, data="unused", out=str(tmp_path / "pool.jsonl")))


def test_config_naming_pickle_weights_is_refused(tiny_classifier, tmp_path, nothing_loads):
    d = tmp_path / "named"
    shutil.copytree(tiny_classifier, d)
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "transformers_weights": "adapter_model.bin"}))
    with pytest.raises(UserError, match=r"model 'n': .*names pickle weights \(adapter_model.bin\).*allow_pickle"):
        Classifier(ClassifierConfig(path=str(d), **SMALL), CTX, "n")


def test_pickle_lora_adapter_is_refused(lm, tmp_path, nothing_loads):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(UserError, match=r"model 'j': .*only pickle LoRA adapter \(adapter_model.bin\).*allow_pickle"):
        Judge(JudgeConfig(path=lm, lora=str(adapter), max_model_len=512, max_tokens=8), CTX, "j")


class _FakeLLM:
    """Stands in for vllm.LLM: records what start_engine asked for."""

    calls: ClassVar[list[dict]] = []

    def __init__(self, **kwargs):
        _FakeLLM.calls.append(kwargs)


def test_vllm_engines_load_safetensors_unless_the_spec_allows_pickle(lm, pickle_lm, monkeypatch):
    import vllm

    monkeypatch.setattr(vllm, "LLM", _FakeLLM)
    _FakeLLM.calls.clear()
    vllm_engine.start_engine("m", lm, dtype="float32")  # a path no spec was checked for
    vllm_engine.start_engine("m", "org/some-hub-model", dtype="float32")
    check_model_files(lm, JudgeConfig(path=lm), "m")
    vllm_engine.start_engine("m", lm, dtype="float32")
    check_model_files(pickle_lm, JudgeConfig(path=pickle_lm, allow_pickle=True), "m")
    vllm_engine.start_engine("m", pickle_lm, dtype="float32")
    assert [c["load_format"] for c in _FakeLLM.calls] == ["safetensors", "safetensors", "safetensors", "auto"]
    assert [c["model"] for c in _FakeLLM.calls] == [lm, "org/some-hub-model", lm, pickle_lm]
    assert vllm_load_format("org/other") == "safetensors"


# -- custom code ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_custom_code_is_refused_without_trust_remote_code(custom_classifier, backend, monkeypatch, nothing_loads):
    monkeypatch.delenv(CODE_RAN, raising=False)
    with pytest.raises(UserError) as e:
        Classifier(ClassifierConfig(path=custom_classifier, backend=backend, **SMALL), CTX, "custom")
    msg = str(e.value)
    assert msg.startswith(f"model 'custom': {os.path.join(custom_classifier, 'config.json')} asks for custom model "
                          "code (auto_map: AutoConfig=configuration_tiny_rm.TinyRMConfig, "
                          "AutoModelForSequenceClassification=modeling_tiny_rm.TinyRMForSequenceClassification)")
    assert "`trust_remote_code: true`" in msg
    assert CODE_RAN not in os.environ  # the checkpoint's code never ran


def test_custom_code_is_refused_for_log_prob_kinds_too(custom_classifier, nothing_loads):
    with pytest.raises(UserError, match=r"model 'c': .*asks for custom model code.*trust_remote_code: true"):
        Implicit(ImplicitConfig(path=custom_classifier, mode="avg", **SMALL), CTX, "c")
    with pytest.raises(UserError, match=r"model 'c': .*asks for custom model code.*trust_remote_code: true"):
        Gpm(GpmConfig(path=custom_classifier, **SMALL), CTX, "c")

