"""Sequence-classifier reward models: one scalar per (prompt, response)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rmorch.actors import register_kind
from rmorch.actors.base import ActorContext, Capabilities, InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest
from rmorch.actors.config import BatchingConfig, ChatTemplateConfig, VllmEngineConfig, WeightsConfig
from rmorch.core.errors import SpecError


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig(WeightsConfig, BatchingConfig, ChatTemplateConfig, VllmEngineConfig):
    # tensor_parallel_size and enforce_eager (VllmEngineConfig): vllm backend only
    backend: Literal["transformers", "vllm"] = "transformers"
    truncation_side: Literal["left", "right"] = "left"  # where inputs longer than max_length are cut
    # multi-objective RMs (several outputs): which output is the scalar reward (an index, or "mean"); all outputs
    # are kept in the `scores` column. Models whose remote code returns `score` + `rewards` (ArmoRM) use those.
    objective: int | Literal["mean"] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tensor_parallel_size > 1 and self.backend != "vllm":
            raise SpecError("tensor_parallel_size", "needs `backend: vllm`")
        if self.enforce_eager and self.backend != "vllm":
            raise SpecError("enforce_eager", "needs `backend: vllm`")
        if self.objective is not None and self.backend != "transformers":
            raise SpecError("objective", "multi-objective outputs need `backend: transformers`")


@register_kind
class Classifier(ModelKind):
    kind = "classifier"
    Config = ClassifierConfig
    # 2: one row per forward pass on transformers (rmorch.actors.backends.text.ROWS_PER_PASS) moved bf16 numbers
    version = "2"
    description = "sequence-classifier reward model (AutoModelForSequenceClassification)"
    reward_bench_type = "Seq. Classifier"

    @classmethod
    def capabilities(cls, config: ClassifierConfig) -> Capabilities:
        return config.weights_capabilities(config.backend, config.tensor_parallel_size)

    def __init__(self, config: ClassifierConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        # late: the backends import torch / vLLM, which `import rmorch.actors` must not
        if config.backend == "vllm":
            from rmorch.actors.backends.vllm_pool import VllmClassifier

            self.backend = VllmClassifier(config, ctx, name)
        else:
            from rmorch.actors.backends.hf import TransformersClassifier

            self.backend = TransformersClassifier(config, ctx, name, objective=config.objective)

    def settings(self) -> InferenceSettings:
        b = self.backend
        return InferenceSettings(
            backend=self.config.backend,
            dtype=b.dtype,
            max_length=b.max_length,
            truncation_side=self.config.truncation_side,
            chat_template=b.template,
        )

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        return self.backend.score(requests)

    def close(self) -> None:
        """Release the backend's engine (vLLM); a no-op for transformers."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
