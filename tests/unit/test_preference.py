"""Pairwise preference models (PairRM-style cross-encoders) on a real tiny classifier: both orders averaged, checked
against the model's own logits, and through the pipeline with the judge metrics."""

from __future__ import annotations

import math

import pytest
import torch

from rmorch.actors.base import ActorContext, CompareRequest
from rmorch.actors.preference import Preference, PreferenceConfig
from rmorch.core.errors import SpecError
from rmorch.orchestrator.spec.parse import spec_from_dict

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_preference.py


def _direct(path: str, text: str) -> float:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    with torch.no_grad():
        return float(model(torch.tensor([tok(text)["input_ids"]])).logits[0, 0])


def test_both_orders_averaged_against_direct_logits(tiny_classifier):
    pm = Preference(PreferenceConfig(path=tiny_classifier, dtype="float32"), ActorContext(seed=0, threads=2), "pm")
    assert pm.settings().chat_template == "none"  # the pair text is not a chat: no template is installed or needed
    reqs = [CompareRequest("i", (0, 1), 0, [{"role": "user", "content": "Capital of France?"}], ("Paris.", "Lyon.")),
            CompareRequest("j", (1, 0), 0, [{"role": "user", "content": "2+2?"}], ("5", "4, since 2+2=4."))]
    for r, o in zip(reqs, pm.score(reqs)):
        q = r.prompt[0]["content"]
        fab = _direct(tiny_classifier, f"<|source|>{q}<|candidate1|>{r.responses[0]}<|candidate2|>{r.responses[1]}")
        fba = _direct(tiny_classifier, f"<|source|>{q}<|candidate1|>{r.responses[1]}<|candidate2|>{r.responses[0]}")
        p = (1 / (1 + math.exp(-fab)) + 1 - 1 / (1 + math.exp(-fba))) / 2
        assert o.scores == pytest.approx([fab, fba], abs=1e-4) and o.score == pytest.approx(p, abs=1e-5)
        assert o.choice == (0 if p > 0.5 else 1) and o.parsed


def test_template_must_hold_all_three_texts():
    with pytest.raises(SpecError, match="response_b"):
        PreferenceConfig(path="x", pair_template="{{prompt}} {{response_a}}")


def test_chat_template_is_not_a_preference_key():
    with pytest.raises(SpecError, match="chat_template"):
        spec_from_dict({"suites": [{"name": "rewardbench"}],
                        "models": [{"name": "pm", "kind": "preference", "path": "x", "chat_template": "plain"}]})
