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

from rmorch.actors.backends.model_files import safetensors_only, vllm_load_format
from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.classifier import Classifier, ClassifierConfig
from rmorch.actors.density_ratio import DensityRatio, DensityRatioConfig
from rmorch.actors.gpm import Gpm, GpmConfig
from rmorch.actors.implicit import Implicit, ImplicitConfig
from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.actors.preference import Preference, PreferenceConfig
from rmorch.core.errors import UserError

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_model_loading_safety.py
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


@pytest.mark.parametrize("kind", ["classifier", "implicit", "gpm"])
def test_transformers_loaders_refuse_pickle_by_flag_alone(kind, pickle_classifier, pickle_lm, lm, monkeypatch):
    """What hub ids rely on (the up-front check cannot look at them): with the check switched off, the loaders'
    `use_safetensors=True` still makes transformers refuse pytorch_model.bin."""
    from rmorch.actors import gpm
    from rmorch.actors.backends import hf, model_files

    for module in (hf, model_files, gpm):  # every module that calls the check
        monkeypatch.setattr(module, "check_model_files", lambda *a: None)
    with pytest.raises(UserError, match=r"model 'pk': cannot load .*no file named model.safetensors"):
        _kinds(pickle_classifier, pickle_lm, lm)[kind]()
    assert safetensors_only(ClassifierConfig(path="x")) is True
    assert safetensors_only(ClassifierConfig(path="x", allow_pickle=True)) is None


def test_builtin_model_passes_the_checks():
    """builtin: models are converted to safetensors; the check accepts the converted directory (skipped when the
    conversion is not cached: tests/test_builtin_models.py converts it)."""
    from rmorch.actors.backends.builtin import default_cache_dir
    from rmorch.actors.backends.hf import local_model_path

    if not (Path(default_cache_dir()) / "models" / "smollm2-135m-instruct" / "rmorch-builtin.json").is_file():
        pytest.skip("builtin:smollm2-135m-instruct is not converted in this cache")
    path = local_model_path(ClassifierConfig(path="builtin:smollm2-135m-instruct"), "smol")
    assert vllm_load_format(path) == "safetensors"


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

