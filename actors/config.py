"""Spec keys that several model kinds share, each declared once with its checks, in small bases by concern.

A kind's `Config` is a frozen, keyword-only dataclass whose fields are the kind's spec keys; it inherits the bases
it needs and adds its own fields. The YAML a user writes stays flat: `{name, kind, path, dtype, max_length, ...}`.
A kind may give a shared key another default by declaring the field again (GPM: `max_length: int = 2048`).

    WeightsConfig      path, dtype, trust_remote_code, allow_pickle, revision: a model's files and how they load
    BatchingConfig     max_length, batch_tokens: token budgets of the transformers forward passes
    ChatTemplateConfig chat_template: how a conversation becomes text
    VllmEngineConfig   tensor_parallel_size, enforce_eager: a vLLM engine's shape
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rmorch.actors.base import Capabilities
from rmorch.core.errors import SpecError
from rmorch.core.model_spec import NOT_SCORING

Dtype = Literal["auto", "bfloat16", "float16", "float32"]


@dataclass(frozen=True, kw_only=True)
class KindConfig:
    """The root of every kind's config. Each base checks its own fields in `__post_init__` and calls super()."""

    def __post_init__(self) -> None:
        pass

    def input_files(self) -> tuple[str, ...]:
        """Files the config names whose content can change outputs (templates); each base adds its own."""
        return ()


@dataclass(frozen=True, kw_only=True)
class WeightsConfig(KindConfig):
    path: str  # local dir, hub id, or builtin:NAME
    dtype: Dtype = "auto"
    trust_remote_code: bool = False  # run the checkpoint's own code (config.json auto_map), only when set
    # load pickle weights (.bin/.pt/...) too; default: safetensors only
    allow_pickle: bool = field(default=False, metadata=NOT_SCORING)
    revision: str | None = None  # hub ids only

    def weight_paths(self) -> tuple[str, ...]:
        """Every model the replica loads, the main one first (kinds of two models add the second)."""
        return (self.path,)

    def adapter_paths(self) -> tuple[str, ...]:
        """Adapter directories applied on top of the weights (LoRA)."""
        return ()

    def weights_capabilities(self, backend: str, tensor_parallel_size: int = 1) -> Capabilities:
        """The capabilities of a kind whose replica loads these weights on `backend`."""
        # transformers backends run fixed-row forward passes (rmorch.actors.backends.text.rows_per_pass)
        invariant = True if backend == "transformers" else None
        return Capabilities(backend=backend, tensor_parallel_size=tensor_parallel_size, weights=self.weight_paths(),
                            adapters=self.adapter_paths(), files=self.input_files(), revision=self.revision,
                            trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle,
                            batch_invariant=invariant)


@dataclass(frozen=True, kw_only=True)
class BatchingConfig(KindConfig):
    max_length: int = 4096  # tokens; longer inputs are truncated, and flagged
    batch_tokens: int = 8192  # padded tokens per forward pass

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_length < 8:
            raise SpecError("max_length", "must be >= 8")
        if self.batch_tokens < self.max_length:
            raise SpecError("batch_tokens", f"must be >= max_length ({self.max_length})")


@dataclass(frozen=True, kw_only=True)
class ChatTemplateConfig(KindConfig):
    chat_template: str = "tokenizer"  # tokenizer | plain | PATH to a Jinja template

    def input_files(self) -> tuple[str, ...]:
        named = () if self.chat_template in ("tokenizer", "plain") else (self.chat_template,)
        return super().input_files() + named


@dataclass(frozen=True, kw_only=True)
class VllmEngineConfig(KindConfig):
    tensor_parallel_size: int = 1  # GPUs per replica, in one placement group on one node
    enforce_eager: bool = False  # no torch.compile (engine start in seconds; see README "Throughput")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tensor_parallel_size < 1:
            raise SpecError("tensor_parallel_size", "must be >= 1")
