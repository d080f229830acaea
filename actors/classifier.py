"""Sequence-classifier reward models: one scalar per (prompt, response)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rmorch.actors import register_kind
from rmorch.actors.base import ActorContext, InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest
from rmorch.core.errors import SpecError
from rmorch.orchestrator.spec.parse import NOT_SCORING


@dataclass(frozen=True)
class ClassifierConfig:
    path: str  # local dir, hub id, or builtin:NAME
    backend: Literal["transformers", "vllm"] = "transformers"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_length: int = 4096  # tokens; longer inputs are truncated from `truncation_side`, and flagged
    truncation_side: Literal["left", "right"] = "left"
    batch_tokens: int = 8192  # padded tokens per forward pass
    chat_template: str = "tokenizer"  # tokenizer | plain | PATH to a Jinja template
    trust_remote_code: bool = False
    allow_pickle: bool = field(default=False, metadata=NOT_SCORING)  # load pickle weights (.bin/.pt/...) too; default: safetensors only
    revision: str | None = None
    tensor_parallel_size: int = 1  # vllm backend only
    enforce_eager: bool = False  # vllm backend: no torch.compile (engine start in seconds; see README "Throughput")
    # multi-objective RMs (several outputs): which output is the scalar reward (an index, or "mean"); all outputs
    # are kept in the `scores` column. Models whose remote code returns `score` + `rewards` (ArmoRM) use those.
    objective: int | Literal["mean"] | None = None

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise SpecError("max_length", "must be >= 8")
        if self.batch_tokens < self.max_length:
            raise SpecError("batch_tokens", f"must be >= max_length ({self.max_length})")
        if self.tensor_parallel_size < 1:
            raise SpecError("tensor_parallel_size", "must be >= 1")
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
    description = "sequence-classifier reward model (AutoModelForSequenceClassification)"

    def __init__(self, config: ClassifierConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        if config.backend == "vllm":
            from rmorch.actors.backends.vllm_pool import VllmClassifier

            self.backend = VllmClassifier(config, ctx, name)
        else:
            from rmorch.actors.backends.hf import TransformersClassifier

            self.backend = TransformersClassifier(config, ctx, name)

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
