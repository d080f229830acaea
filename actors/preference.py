"""Pairwise preference models (PairRM style): a cross-encoder reads the prompt and BOTH responses and outputs a logit
that the first one is better. Every pair is scored in both orders and the two averaged, which cancels the model's
own position preference:

    p(A beats B) = ( sigmoid(f(x, A, B)) + 1 - sigmoid(f(x, B, A)) ) / 2

The verdict is A when p > 0.5, B when p < 0.5; an exact tie is left unparsed (the leaderboards' 0.5 credit).
Result rows are comparison rows (order, verdict) with `score` = p(first shown beats second) and `scores` =
[f(x, A, B), f(x, B, A)], so the judge metrics (position consistency, first-position rate) apply too.

The pair is rendered by `pair_template` with {{prompt}}, {{response_a}}, {{response_b}} (default: PairRM's
`<|source|>...<|candidate1|>...<|candidate2|>...`), each text cut to `max_text_tokens` tokens, tokenised without a
chat template and truncated to `max_length` from the left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rmorch.actors import register_kind
from rmorch.actors.backends.text import encode, token_budget_batches
from rmorch.actors.base import (
    ActorContext,
    Capabilities,
    CompareRequest,
    InferenceSettings,
    ModelKind,
    Presentation,
    ScoreOutcome,
)
from rmorch.actors.config import BatchingConfig, WeightsConfig
from rmorch.actors.judge_prompts import fill, render_question
from rmorch.core.errors import SpecError

PAIRRM_TEMPLATE = "<|source|>{{prompt}}<|candidate1|>{{response_a}}<|candidate2|>{{response_b}}"


@dataclass(frozen=True, kw_only=True)
class PreferenceConfig(WeightsConfig, BatchingConfig):
    # path: a sequence-classification cross-encoder (one output: the first response is better)
    pair_template: str = PAIRRM_TEMPLATE
    max_length: int = 2048
    max_text_tokens: int = 1024  # per text (prompt and each response) before the pair is assembled
    truncation_side: Literal["left", "right"] = "left"

    def __post_init__(self) -> None:
        super().__post_init__()
        for p in ("{{prompt}}", "{{response_a}}", "{{response_b}}"):
            if p not in self.pair_template:
                raise SpecError("pair_template", f"must contain {p}")


@register_kind
class Preference(ModelKind):
    kind = "preference"
    Config = PreferenceConfig
    # 2: one row per forward pass on transformers (rmorch.actors.backends.text.ROWS_PER_PASS) moved bf16 numbers
    version = "2"
    description = "pairwise preference model (PairRM-style cross-encoder), both orders averaged"

    @classmethod
    def presentation(cls, config: PreferenceConfig) -> Presentation:
        return Presentation("pairwise", "single")  # both orders are scored inside each request

    @classmethod
    def capabilities(cls, config: PreferenceConfig) -> Capabilities:
        return config.weights_capabilities("transformers")

    def __init__(self, config: PreferenceConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        # late: the backend imports torch, which `import rmorch.actors` must not
        from rmorch.actors.backends.hf import TransformersClassifier

        self.backend = TransformersClassifier(config, ctx, name, chat=False)  # the pair text is not a chat

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="transformers", dtype=self.backend.dtype, max_length=self.backend.max_length,
                                 truncation_side=self.config.truncation_side, chat_template=self.backend.template)

    def _clip(self, text: str) -> str:
        tok = self.backend.tokenizer
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= self.config.max_text_tokens else tok.decode(ids[: self.config.max_text_tokens])

    def pair_ids(self, prompt: str, a: str, b: str) -> tuple[list[int], bool]:
        text = fill(self.config.pair_template, {"prompt": prompt, "response_a": a, "response_b": b})
        e = encode(self.backend.tokenizer, text, self.backend.max_length, self.config.truncation_side)
        return e.ids, e.truncated

    def score(self, requests: list[CompareRequest]) -> list[ScoreOutcome]:  # type: ignore[override]
        seqs: list[list[int]] = []
        flags: list[bool] = []
        for r in requests:
            if not isinstance(r, CompareRequest) or len(r.responses) != 2:
                raise ValueError("preference models compare exactly two responses")
            prompt = self._clip(render_question(r.prompt, r.context))
            a, b = self._clip(r.responses[0]), self._clip(r.responses[1])
            for x, y in ((a, b), (b, a)):
                ids, cut = self.pair_ids(prompt, x, y)
                seqs.append(ids)
                flags.append(cut)
        logits = self._forward_sorted(seqs)
        out = []
        for k, _ in enumerate(requests):
            fab, fba = logits[2 * k], logits[2 * k + 1]
            p = (_sigmoid(fab) + 1.0 - _sigmoid(fba)) / 2
            choice = 0 if p > 0.5 else 1 if p < 0.5 else None
            out.append(ScoreOutcome(score=p, scores=[fab, fba], choice=choice, parsed=choice is not None,
                                    n_tokens=max(len(seqs[2 * k]), len(seqs[2 * k + 1])),
                                    truncated=flags[2 * k] or flags[2 * k + 1]))
        return out

    def _forward_sorted(self, seqs: list[list[int]]) -> list[float]:
        import torch  # late: loaded with the model

        values = [0.0] * len(seqs)
        with torch.inference_mode():
            for batch in token_budget_batches([len(s) for s in seqs], self.config.batch_tokens):
                for i, (v, _) in zip(batch, self.backend.forward_ids([seqs[i] for i in batch])):
                    values[i] = v
        return values


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
