"""Multi-objective reward models: every output kept in `scores`, the scalar chosen by `objective`, on a real tiny
3-output Llama classifier, in-process against the model's own logits and through the pipeline."""

from __future__ import annotations

import pytest
import torch

from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.classifier import Classifier, ClassifierConfig
from rmorch.core.errors import SpecError, UserError

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_multiobjective.py


@pytest.fixture(scope="module")
def three_head(tiny_classifier, tmp_path_factory) -> str:
    from transformers import AutoConfig, AutoTokenizer, LlamaForSequenceClassification

    out = str(tmp_path_factory.mktemp("three-head"))
    cfg = AutoConfig.from_pretrained(tiny_classifier)
    cfg.num_labels = 3
    torch.manual_seed(5)
    model = LlamaForSequenceClassification(cfg)
    with torch.no_grad():
        model.score.weight.normal_(0.0, cfg.hidden_size ** -0.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_classifier).save_pretrained(out)
    return out


REQS = [ScoreRequest("a", 0, [{"role": "user", "content": "Hi"}], "Hello there."),
        ScoreRequest("a", 1, [{"role": "user", "content": "Hi"}], "Go away.")]


def _logits(path: str, req: ScoreRequest) -> list[float]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    ids = tok.apply_chat_template(list(req.prompt) + [{"role": "assistant", "content": req.response}],
                                  tokenize=True, return_dict=False)
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].tolist()


def test_objective_picks_the_scalar_and_keeps_every_output(three_head):
    ctx = ActorContext(seed=0, threads=2)
    by_index = Classifier(ClassifierConfig(path=three_head, dtype="float32", objective=2), ctx, "mo").score(REQS)
    by_mean = Classifier(ClassifierConfig(path=three_head, dtype="float32", objective="mean"), ctx, "mo").score(REQS)
    for r, a, b in zip(REQS, by_index, by_mean):
        want = _logits(three_head, r)
        assert a.scores == pytest.approx(want, abs=1e-4) and len(a.scores) == 3
        assert a.score == pytest.approx(want[2], abs=1e-4)
        assert b.score == pytest.approx(sum(want) / 3, abs=1e-4)


def test_objective_is_required_and_checked(three_head):
    ctx = ActorContext(seed=0, threads=1)
    with pytest.raises(UserError, match="3 outputs"):
        Classifier(ClassifierConfig(path=three_head, dtype="float32"), ctx, "mo")
    with pytest.raises(UserError, match="objective 7"):
        Classifier(ClassifierConfig(path=three_head, dtype="float32", objective=7), ctx, "mo")
    with pytest.raises(SpecError, match="backend: transformers"):
        ClassifierConfig(path=three_head, backend="vllm", objective=0)
