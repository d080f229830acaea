"""The one batch interface every model kind implements, and the request/outcome types it speaks.

A kind is a class with a frozen `Config` dataclass (its spec keys) and `score(requests) -> outcomes`. It loads its
model in `__init__`, once per replica, and owns batching, sorting and padding. It never computes a metric.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class ScoreRequest:
    """One pointwise unit: score `response` as the answer to `prompt` (chat messages)."""

    item_id: str
    candidate: int
    prompt: list[dict[str, str]]
    response: str
    context: list[dict[str, str]] | None = None


@dataclass
class ScoreOutcome:
    """What a kind returns per request, in request order. `error` set means the unit failed (score is None)."""

    score: float | None = None
    scores: list[float] | None = None
    n_tokens: int | None = None
    truncated: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class InferenceSettings:
    """The settings recorded beside every result row (resolved values, e.g. the dtype 'auto' became)."""

    backend: str
    dtype: str | None = None
    max_length: int | None = None
    truncation_side: str | None = None
    chat_template: str | None = None


@dataclass(frozen=True)
class ActorContext:
    """Where a replica runs: the sweep seed, the CPU threads it was given, the GPU ids Ray assigned (logical GPUs
    on a CPU-only test cluster are assigned too) and the torch device to use ("cuda" only if CUDA is present)."""

    seed: int = 0
    threads: int = 1
    gpu_ids: tuple[int, ...] = field(default_factory=tuple)
    device: str = "cpu"


@dataclass(frozen=True)
class NoConfig:
    """Kinds without spec keys."""


class ModelKind(ABC):
    kind: ClassVar[str]
    Config: ClassVar[type] = NoConfig
    uses_gpu: ClassVar[bool] = True  # False: never ask the scheduler for a GPU
    description: ClassVar[str] = ""

    def __init__(self, config: Any, ctx: ActorContext, name: str):
        self.config = config
        self.ctx = ctx
        self.name = name

    @abstractmethod
    def settings(self) -> InferenceSettings: ...

    @abstractmethod
    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        """Score a batch of requests (a whole shard); return one outcome per request, in order.

        Raise to fail the whole call: the worker then bisects the batch to isolate the item that raised.
        """

    def cost(self, request: ScoreRequest) -> float:
        """Relative cost of one request, for scheduling (default: characters seen)."""
        return float(len(request.response) + sum(len(m["content"]) for m in request.prompt))
