"""Density-ratio rewards (CDR): reward = log p_strong(y|x) - log p_weak(y|x), summed over response tokens.

Two causal LMs in one replica, the same tokenisation and exact prompt masking as `implicit`
(rmorch.actors.backends.hf_logprobs). An optional `prefix` (an instruction or criteria text) is put before the user's first
turn for both models, as a system message (`prefix_role: system`) or at the top of the first user message
(`prefix_role: user`). `scores` keeps [log p_strong, log p_weak]. Both models load safetensors only unless
`allow_pickle: true`, and a checkpoint's own code only with `trust_remote_code: true` (rmorch.actors.backends.model_files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rmorch.actors import register_kind
from rmorch.actors.base import ActorContext, Capabilities, InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest
from rmorch.actors.config import BatchingConfig, ChatTemplateConfig, WeightsConfig


@dataclass(frozen=True, kw_only=True)
class DensityRatioConfig(WeightsConfig, BatchingConfig, ChatTemplateConfig):
    # path: the strong model
    weak_path: str  # the weak model
    prefix: str | None = None
    prefix_role: Literal["system", "user"] = "system"

    def weight_paths(self) -> tuple[str, ...]:
        return (self.path, self.weak_path)


def with_prefix(prompt: list[dict[str, str]], prefix: str | None, role: str) -> list[dict[str, str]]:
    if not prefix:
        return list(prompt)
    if role == "system":
        return [{"role": "system", "content": prefix}, *prompt]
    out, done = [], False
    for m in prompt:
        if not done and m["role"] == "user":
            m, done = {"role": "user", "content": f"{prefix}\n\n{m['content']}"}, True
        out.append(m)
    return out


@register_kind
class DensityRatio(ModelKind):
    kind = "density_ratio"
    Config = DensityRatioConfig
    # 2: one row per forward pass on transformers (rmorch.actors.backends.text.ROWS_PER_PASS) moved bf16 numbers
    version = "2"
    description = "density ratio of two LMs: log p_strong(y|x) - log p_weak(y|x), optional instruction prefix"

    @classmethod
    def capabilities(cls, config: DensityRatioConfig) -> Capabilities:
        return config.weights_capabilities("transformers")

    def __init__(self, config: DensityRatioConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        # late: the backends import torch, which `import rmorch.actors` must not
        from rmorch.actors.backends.hf import local_model_dir
        from rmorch.actors.backends.hf_logprobs import TransformersLogprobs

        for path in (config.path, config.weak_path):  # the file checks of both models, before either loads
            local_model_dir(path, name, config)
        self.strong = TransformersLogprobs(config.path, config, ctx, name)
        self.weak = TransformersLogprobs(config.weak_path, config, ctx, name, tokenizer=self.strong.tokenizer)

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="transformers", dtype=self.strong.dtype, max_length=self.config.max_length,
                                 truncation_side="left", chat_template=self.strong.template)

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        prefixed = [ScoreRequest(r.item_id, r.candidate, with_prefix(r.prompt, self.config.prefix,
                                                                     self.config.prefix_role), r.response, r.context)
                    for r in requests]
        encoded = [self.strong.encode(r) for r in prefixed]
        strong, weak = self.strong.token_logprobs(encoded), self.weak.token_logprobs(encoded)
        out = []
        for e, s, w in zip(encoded, strong, weak):
            ls, lw = (math.fsum(s), math.fsum(w)) if s else (math.nan, math.nan)
            out.append(ScoreOutcome(score=ls - lw, scores=[ls, lw], n_tokens=len(e.ids), truncated=e.truncated))
        return out
