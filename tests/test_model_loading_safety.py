"""Loading untrusted model files: pickle weights only with `allow_pickle: true`, a checkpoint's own code only with
`trust_remote_code: true` (rmorch.actors.backends.model_files), for every kind that loads weights and both backends.

Real tiny models on disk: the safetensors builds of tests/tiny_models.py, the same weights re-saved as pickle
(`pytorch_model.bin`, what `save_pretrained(safe_serialization=False)` wrote before transformers 5), and a model
whose config.json asks for custom code (configuration_tiny_rm.py / modeling_tiny_rm.py via auto_map). Hub ids are
covered by the loaders' flags only (use_safetensors, load_format), which cannot be exercised offline.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from rmorch.actors.backends import vllm_engine
from rmorch.actors.backends.model_files import check_model_files, safetensors_only, vllm_load_format
from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.classifier import Classifier, ClassifierConfig
from rmorch.actors.density_ratio import DensityRatio, DensityRatioConfig
from rmorch.actors.gpm import Gpm, GpmConfig
from rmorch.actors.implicit import Implicit, ImplicitConfig
from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.actors.preference import Preference, PreferenceConfig
from rmorch.core.errors import UserError

CTX = ActorContext(seed=0, threads=1)
SMALL = {"dtype": "float32", "max_length": 256, "batch_tokens": 1024}
CUSTOM_OFFSET = 100.0  # the custom model's forward adds this to every logit: proof that its own code ran
CODE_RAN = "RMORCH_TEST_CUSTOM_CODE_RAN"  # set by the custom configuration module when it is imported

REQUESTS = [
    ScoreRequest("a", 0, [{"role": "user", "content": "What is the capital of France?"}], "The capital is Paris."),
    ScoreRequest("b", 1, [{"role": "user", "content": "How many legs does a spider have?"}], "Eight legs."),
    ScoreRequest("c", 0, [{"role": "user", "content": "hello there"}], "Hello! How can I help you today?"),
]


def _repickle(src: str, dst: Path) -> str:
    """A copy of the safetensors model `src` with its weights as a pickle `pytorch_model.bin` only."""
    from safetensors.torch import load_file

    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    torch.save(state, dst / "pytorch_model.bin")
    os.remove(dst / "model.safetensors")
    return str(dst)


CONFIGURATION_PY = f"""
import os

from transformers import LlamaConfig

os.environ["{CODE_RAN}"] = "1"


class TinyRMConfig(LlamaConfig):
    model_type = "tiny_rm"
"""

MODELING_PY = f"""
import torch
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutputWithPast

from .configuration_tiny_rm import TinyRMConfig


class TinyRMForSequenceClassification(LlamaPreTrainedModel):
    \"\"\"A Llama reward model that pools the last attended token and adds {CUSTOM_OFFSET} to its logit.\"\"\"

    config_class = TinyRMConfig

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = LlamaModel(config)
        self.score = torch.nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(-1) - 1
        logits = self.score(hidden[torch.arange(hidden.shape[0]), last]) + {CUSTOM_OFFSET}
        return SequenceClassifierOutputWithPast(logits=logits)
"""


@pytest.fixture(scope="module")
def lm(tmp_path_factory) -> str:
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("lm") / "model"), seed=0, varied=True)


@pytest.fixture(scope="module")
def pickle_classifier(tiny_classifier, tmp_path_factory) -> str:
    return _repickle(tiny_classifier, tmp_path_factory.mktemp("pk") / "pickle-classifier")


@pytest.fixture(scope="module")
def pickle_lm(lm, tmp_path_factory) -> str:
    return _repickle(lm, tmp_path_factory.mktemp("pk") / "pickle-lm")


@pytest.fixture(scope="module")
def custom_classifier(tiny_classifier, tmp_path_factory) -> str:
    """The tiny classifier's weights (safetensors) under a custom architecture its config.json maps to its own code."""
    d = tmp_path_factory.mktemp("custom") / "tiny_rm_custom"
    shutil.copytree(tiny_classifier, d)
    config = json.loads((d / "config.json").read_text())
    config.update(model_type="tiny_rm", architectures=["TinyRMForSequenceClassification"], auto_map={
        "AutoConfig": "configuration_tiny_rm.TinyRMConfig",
        "AutoModelForSequenceClassification": "modeling_tiny_rm.TinyRMForSequenceClassification",
    })
    (d / "config.json").write_text(json.dumps(config, indent=2))
    (d / "configuration_tiny_rm.py").write_text(CONFIGURATION_PY)
    (d / "modeling_tiny_rm.py").write_text(MODELING_PY)
    return str(d)


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


def _scores(model) -> list[float]:
    return [o.score for o in model.score(REQUESTS)]


# -- pickle weights ------------------------------------------------------------------------------------------------


def _kinds(pickle_classifier: str, pickle_lm: str, lm: str) -> dict:
    """Every kind that loads weights, on both backends where it has two, pointed at pickle-only weights."""
    return {
        "classifier": lambda: Classifier(ClassifierConfig(path=pickle_classifier, **SMALL), CTX, "pk"),
        "classifier-vllm": lambda: Classifier(ClassifierConfig(path=pickle_classifier, backend="vllm", **SMALL),
                                              CTX, "pk"),
        "implicit": lambda: Implicit(ImplicitConfig(path=pickle_lm, mode="sum", **SMALL), CTX, "pk"),
        "implicit-vllm": lambda: Implicit(ImplicitConfig(path=lm, ref_path=pickle_lm, backend="vllm", **SMALL),
                                          CTX, "pk"),
        "density_ratio": lambda: DensityRatio(DensityRatioConfig(path=lm, weak_path=pickle_lm, **SMALL), CTX, "pk"),
        "preference": lambda: Preference(PreferenceConfig(path=pickle_classifier, **SMALL), CTX, "pk"),
        "gpm": lambda: Gpm(GpmConfig(path=pickle_lm, **SMALL), CTX, "pk"),
        "judge-vllm": lambda: Judge(JudgeConfig(path=pickle_lm, max_model_len=512, max_tokens=8), CTX, "pk"),
    }


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


def test_allow_pickle_loads_the_same_weights(tiny_classifier, pickle_classifier, lm, pickle_lm):
    safe = Classifier(ClassifierConfig(path=tiny_classifier, **SMALL), CTX, "safe")  # no opt-in needed
    pickled = Classifier(ClassifierConfig(path=pickle_classifier, allow_pickle=True, **SMALL), CTX, "pk")
    assert _scores(pickled) == _scores(safe)
    assert len(set(_scores(safe))) == len(REQUESTS)  # real scores, not a constant

    safe_lm = Implicit(ImplicitConfig(path=lm, mode="sum", **SMALL), CTX, "safe")
    pickled_lm = Implicit(ImplicitConfig(path=pickle_lm, mode="sum", allow_pickle=True, **SMALL), CTX, "pk")
    assert _scores(pickled_lm) == _scores(safe_lm)


def test_safetensors_beside_pickle_load_without_opt_in_and_the_pickle_is_never_read(tiny_classifier, tmp_path,
                                                                                    monkeypatch):
    both = tmp_path / "both"
    shutil.copytree(tiny_classifier, both)
    (both / "pytorch_model.bin").write_bytes(b"not a pickle: reading it would fail")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load called")

    monkeypatch.setattr(torch, "load", no_unpickling)
    ref = Classifier(ClassifierConfig(path=tiny_classifier, **SMALL), CTX, "ref")
    assert _scores(Classifier(ClassifierConfig(path=str(both), **SMALL), CTX, "both")) == _scores(ref)


def test_rmorch_generate_refuses_pickle_only_and_custom_code_policies(pickle_lm, custom_classifier, tmp_path,
                                                                      nothing_loads):
    """`rmorch generate` has no opt-in keys: its policy must be safetensors without custom code."""
    from rmorch.orchestrator.generate import GenerateConfig, start_policy

    for model, what in ((pickle_lm, "holds only pickle weights"), (custom_classifier, "asks for custom model code")):
        with pytest.raises(UserError, match=f"model 'policy': .*{what}"):
            start_policy(GenerateConfig(model=model, data="unused", out=str(tmp_path / "pool.jsonl")))


@pytest.mark.parametrize("kind", ["classifier", "implicit", "gpm"])
def test_transformers_loaders_refuse_pickle_by_flag_alone(kind, pickle_classifier, pickle_lm, lm, monkeypatch):
    """What hub ids rely on (the up-front check cannot look at them): with the check switched off, the loaders'
    `use_safetensors=True` still makes transformers refuse pytorch_model.bin."""
    import rmorch.actors.backends.hf as hf
    import rmorch.actors.backends.model_files as model_files
    import rmorch.actors.gpm as gpm

    for module in (hf, model_files, gpm):  # every module that calls the check
        monkeypatch.setattr(module, "check_model_files", lambda *a: None)
    with pytest.raises(UserError, match=r"model 'pk': cannot load .*no file named model.safetensors"):
        _kinds(pickle_classifier, pickle_lm, lm)[kind]()
    assert safetensors_only(ClassifierConfig(path="x")) is True
    assert safetensors_only(ClassifierConfig(path="x", allow_pickle=True)) is None


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

    calls: list[dict] = []

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


def test_builtin_model_passes_the_checks():
    """builtin: models are converted to safetensors; the check accepts the converted directory (skipped when the
    conversion is not cached: tests/test_builtin_models.py converts it)."""
    from rmorch.actors.backends.builtin import default_cache_dir
    from rmorch.actors.backends.hf import local_model_path

    if not (Path(default_cache_dir()) / "models" / "smollm2-135m-instruct" / "rmorch-builtin.json").is_file():
        pytest.skip("builtin:smollm2-135m-instruct is not converted in this cache")
    path = local_model_path(ClassifierConfig(path="builtin:smollm2-135m-instruct"), "smol")
    assert vllm_load_format(path) == "safetensors"


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


def test_custom_code_runs_with_trust_remote_code_and_warns(custom_classifier, tiny_classifier, caplog, monkeypatch):
    monkeypatch.delenv(CODE_RAN, raising=False)
    with caplog.at_level(logging.WARNING, logger="rmorch.actors.backends.model_files"):
        custom = Classifier(ClassifierConfig(path=custom_classifier, trust_remote_code=True, **SMALL), CTX, "custom")
    warnings = [r.getMessage() for r in caplog.records if r.name == "rmorch.actors.backends.model_files"]
    assert warnings == [f"model 'custom' runs custom code from {custom_classifier} (trust_remote_code: true)"]
    assert os.environ.get(CODE_RAN) == "1"
    assert type(custom.backend.model).__name__ == "TinyRMForSequenceClassification"
    plain = Classifier(ClassifierConfig(path=tiny_classifier, **SMALL), CTX, "plain")
    expected = [s + CUSTOM_OFFSET for s in _scores(plain)]
    assert _scores(custom) == pytest.approx(expected, abs=1e-4)  # same weights, the custom forward's offset


def test_custom_code_is_refused_for_log_prob_kinds_too(custom_classifier, nothing_loads):
    with pytest.raises(UserError, match=r"model 'c': .*asks for custom model code.*trust_remote_code: true"):
        Implicit(ImplicitConfig(path=custom_classifier, mode="avg", **SMALL), CTX, "c")
    with pytest.raises(UserError, match=r"model 'c': .*asks for custom model code.*trust_remote_code: true"):
        Gpm(GpmConfig(path=custom_classifier, **SMALL), CTX, "c")

