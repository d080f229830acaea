"""Implicit rewards from language-model log-probabilities (DPO and reference-free).

    dpo   reward = sum log pi(y|x) - sum log pi_ref(y|x)     (policy `path`, reference `ref_path`; beta only scales)
    sum   reward = sum log pi(y|x)
    avg   reward = mean log pi(y|x) per response token
    norm  reward = -|| log pi(y_t|x, y_<t) ||_2 over response tokens   (RewardBench's "norm" reference-free score)

Prompt tokens are masked exactly: the prompt is rendered with the chat template plus the generation prompt, the
whole conversation with the response as the assistant turn; the response tokens are those after the longest common
prefix of the two (a template that rewrites earlier turns still masks everything before the first difference).
Policy and reference live in the same replica (one actor, both models pinned to its device). Inputs longer than
`max_length` lose prompt tokens from the left first; a response that alone exceeds it is cut at its end, flagged.
`scores` keeps the parts: [policy log-prob statistic, reference log-prob sum] (dpo) or [policy statistic].

`backend: vllm` runs policy and reference as two vLLM engines in the same replica (`rmorch.actors.backends.vllm_logprobs`:
the same token ids as the transformers backend, prompt log-probs from one batched `generate` call per model per
shard; the engines' gpu_memory_utilization is sized from the replica's GPUs by
`rmorch.actors.backends.vllm_engine.memory_share`: 0.9 for one engine on a whole GPU, 0.425 each for two, half that
at `num_gpus: 0.5`; on CPU 1 GiB of KV cache each). `close()` shuts the engines down. On transformers, a replica of
several GPUs shards both models over all of them (rmorch.actors.backends.hf.device_placement), each model within
its half of every GPU's memory.

Both backends load safetensors only unless `allow_pickle: true`, and a checkpoint's own code only with
`trust_remote_code: true` (rmorch.actors.backends.model_files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from rmorch.actors import register_kind
from rmorch.actors.base import ActorContext, Capabilities, InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest
from rmorch.actors.config import BatchingConfig, ChatTemplateConfig, WeightsConfig
from rmorch.core.errors import SpecError


@dataclass(frozen=True, kw_only=True)
class ImplicitConfig(WeightsConfig, BatchingConfig, ChatTemplateConfig):
    # path: the policy (DPO-trained) model; chat_template: the policy's tokenizer is used for both models
    ref_path: str | None = None  # the reference model (dpo mode)
    mode: Literal["dpo", "sum", "avg", "norm"] = "dpo"
    backend: Literal["transformers", "vllm"] = "transformers"  # vllm: policy and reference as two engines

    def weight_paths(self) -> tuple[str, ...]:
        return (self.path, self.ref_path) if self.ref_path else (self.path,)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode == "dpo" and not self.ref_path:
            raise SpecError("ref_path", "mode dpo needs a reference model (or use mode sum | avg | norm)")
        if self.mode != "dpo" and self.ref_path:
            raise SpecError("ref_path", f"mode {self.mode} is reference-free: leave ref_path out")


@register_kind
class Implicit(ModelKind):
    kind = "implicit"
    Config = ImplicitConfig
    # 2: one row per forward pass on transformers (rmorch.actors.backends.text.ROWS_PER_PASS) moved bf16 numbers
    version = "2"
    description = "implicit reward from log-probs: DPO log-ratio to a reference, or reference-free sum/avg/norm"

    @classmethod
    def capabilities(cls, config: ImplicitConfig) -> Capabilities:
        return config.weights_capabilities(config.backend)

    @classmethod
    def reward_bench_identity(cls, settings: dict[str, Any]) -> tuple[str, str | None]:
        dpo = settings.get("mode") == "dpo"
        return ("DPO", settings.get("ref_path")) if dpo else ("DPO Ref. Free", None)

    def __init__(self, config: ImplicitConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        self.policy: Any = None
        self.reference: Any = None
        # late: the backends import torch / vLLM, which `import rmorch.actors` must not
        from rmorch.actors.backends.hf import local_model_dir

        for path in (config.path, config.ref_path):  # the file checks of both models, before either loads
            if path:
                local_model_dir(path, name, config)
        if config.backend == "vllm":
            from rmorch.actors.backends.vllm_engine import memory_share, replica_gpu_fraction
            from rmorch.actors.backends.vllm_logprobs import VllmLogprobs

            # the engines in one replica share the GPU memory the replica holds
            share = memory_share(replica_gpu_fraction(), engines=2 if config.ref_path else 1)
            self.policy = VllmLogprobs(config.path, config, ctx, name, gpu_memory_utilization=share)
            if config.ref_path:
                try:
                    self.reference = VllmLogprobs(config.ref_path, config, ctx, name, tokenizer=self.policy.tokenizer,
                                                  gpu_memory_utilization=share)
                except BaseException:
                    self.close()
                    raise
        else:
            from rmorch.actors.backends.hf_logprobs import TransformersLogprobs

            models = 2 if config.ref_path else 1  # on several GPUs each model shards within its share of each
            self.policy = TransformersLogprobs(config.path, config, ctx, name, models_in_replica=models)
            self.reference = (TransformersLogprobs(config.ref_path, config, ctx, name, tokenizer=self.policy.tokenizer,
                                                   models_in_replica=models) if config.ref_path else None)

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend=self.config.backend, dtype=self.policy.dtype,
                                 max_length=self.config.max_length, truncation_side="left",
                                 chat_template=self.policy.template)

    def close(self) -> None:
        """Release the backends' engines (vLLM); a no-op for transformers."""
        for backend in (self.reference, self.policy):
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        encoded = [self.policy.encode(r) for r in requests]
        policy = self.policy.token_logprobs(encoded)
        ref = self.reference.token_logprobs(encoded) if self.reference else None
        out = []
        for k, e in enumerate(encoded):
            stat = reduce_logprobs(policy[k], self.config.mode)
            if ref is not None:
                ref_sum = math.fsum(ref[k])
                out.append(ScoreOutcome(score=stat - ref_sum, scores=[stat, ref_sum], n_tokens=len(e.ids),
                                        truncated=e.truncated))
            else:
                out.append(ScoreOutcome(score=stat, scores=[stat], n_tokens=len(e.ids), truncated=e.truncated))
        return out


def reduce_logprobs(logprobs: list[float], mode: str) -> float:
    """The policy statistic of one response from its per-token log-probs."""
    if not logprobs:
        return math.nan
    if mode in ("dpo", "sum"):
        return math.fsum(logprobs)
    if mode == "avg":
        return math.fsum(logprobs) / len(logprobs)
    if mode == "norm":
        return -math.sqrt(math.fsum(x * x for x in logprobs))
    raise ValueError(mode)
