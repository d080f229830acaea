"""The one batch interface every model kind implements, and the request/outcome types it speaks.

A kind is a class with a frozen `Config` dataclass (its spec keys) and `score(requests) -> outcomes`. It loads its
model in `__init__`, once per replica, and owns batching, sorting and padding. It never computes a metric.
"""

from __future__ import annotations

import hashlib
import json
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
    subset: str | None = None  # the item's subset (a built-in judge template may render some subsets apart)


@dataclass(frozen=True)
class CompareRequest:
    """One comparison: show `responses` (the item's candidates in the presented `order`) and pick the best.

    `permutation` is which of the item's presented orders this is (rmorch.core.permutations)."""

    item_id: str
    order: tuple[int, ...]
    permutation: int
    prompt: list[dict[str, str]]
    responses: tuple[str, ...]
    context: list[dict[str, str]] | None = None
    subset: str | None = None  # the item's subset


Request = ScoreRequest | CompareRequest


@dataclass
class ScoreOutcome:
    """What a kind returns per request, in request order. `error` set means the request failed.

    Pointwise: `score` (a judge's rating; None when not parsed). Comparisons: `choice`, the position in the
    presented order the model picked (None when not parsed). Generative kinds also fill `raw_output` and `parsed`.
    `probs` (probability verdicts): comparisons, per presented position; ratings, per rating 1..10.
    """

    score: float | None = None
    scores: list[float] | None = None
    choice: int | None = None
    probs: list[float] | None = None
    raw_output: str | None = None
    parsed: bool | None = None
    n_tokens: int | None = None
    truncated: bool | None = None
    error: str | None = None


@dataclass(frozen=True)
class Presentation:
    """How a kind consumes items, known before any model loads (the plan depends on it).

    pointwise: one request per candidate. pairwise / nway: comparisons in the orders of `permutations`
    (rmorch.core.permutations). rating: one request per candidate, answered with a rating."""

    protocol: str = "pointwise"  # pointwise | pairwise | nway | rating
    permutations: str = "single"

    @property
    def compares(self) -> bool:
        return self.protocol in ("pairwise", "nway")


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
class Capabilities:
    """What the driver needs to know of a model before anything loads, declared by its kind
    (`ModelKind.capabilities`): the scheduler and the cost model (GPUs, size), the checks before Ray starts (paths,
    opt-ins) and the exporters. Kinds with weights build it from their config (rmorch.actors.config)."""

    backend: str = "none"  # transformers | vllm | openai | none (no weights: baselines, published scores)
    tensor_parallel_size: int = 1  # GPUs of one replica, in one placement group on one node
    weights: tuple[str, ...] = ()  # every model the replica loads (local dir, hub id or builtin:NAME), main first
    adapters: tuple[str, ...] = ()  # adapter directories applied on top of the weights (LoRA)
    # files (or directories of them) the replica reads whose content can change outputs: a judge's template file, a
    # chat template file, published scores. A result's identity covers their whole content
    # (rmorch.orchestrator.plan.provenance), and the weights' and adapters' fingerprints.
    files: tuple[str, ...] = ()
    # built-in content the config selects that can change outputs but is no file (a judge's built-in template's
    # prompts): the identity covers it as it covers the content of `files`
    texts: tuple[str, ...] = ()
    revision: str | None = None  # of hub ids
    trust_remote_code: bool = False  # the spec's opt-in to a checkpoint's own code
    allow_pickle: bool = False  # the spec's opt-in to pickle weights
    param_count: float | None = None  # parameters, when the kind knows them without reading the model's files
    # whether every output is the same whatever the batching (shard size, replicas, what store and caches hold):
    # True where the kind's backend guarantees it for this config, False where it does not, None where unstated.
    # Recorded per model in run.json and shown in the report.
    batch_invariant: bool | None = None


@dataclass(frozen=True)
class NoConfig:
    """Kinds without spec keys."""


def content_key(request: Request, *, identity: bool = False) -> str:
    """A hash of everything a model is shown for this request: prompt, response(s) in the presented order, context.

    Two requests with the same key get the same outcome from a deterministic model with the same settings, so one
    is scored and the other reuses it (rmorch.orchestrator.plan.score_cache). `identity` adds the item id and candidate/order,
    for kinds whose outcome also depends on those (seeded sampling). Context parts that name files (images) are
    keyed by their path, not their bytes.
    """
    if isinstance(request, CompareRequest):
        payload: list[Any] = ["compare", request.prompt, list(request.responses), request.context]
        which: Any = list(request.order)
    else:
        payload = ["score", request.prompt, request.response, request.context]
        which = request.candidate
    if identity:
        payload += [request.item_id, which]
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


class ModelKind(ABC):
    kind: ClassVar[str]
    Config: ClassVar[type] = NoConfig
    uses_gpu: ClassVar[bool] = True  # False: never ask the scheduler for a GPU
    description: ClassVar[str] = ""
    # Whether outcomes may be reused for identical requests (same settings, same content key). False for kinds
    # whose outcome depends on the item's identity (random, published) or that cost less than a lookup (length).
    cacheable: ClassVar[bool] = True
    # The implementation's version: bump it when the kind's outputs for the same settings and files change (a new
    # default prompt or parser, other numerics). It is part of every result's identity, so stored results of an
    # older implementation are computed again, never reused (rmorch.orchestrator.plan.provenance).
    version: ClassVar[str] = "1"

    # How reward-bench's result files name this kind's models (`model_type`; see rmorch.orchestrator.report.export).
    reward_bench_type: ClassVar[str] = "Custom Classifier"

    @classmethod
    def capabilities(cls, config: Any) -> Capabilities:
        """What the driver needs to know of a model of this kind with this config (default: no weights)."""
        return Capabilities()

    @classmethod
    def reward_bench_identity(cls, settings: dict[str, Any]) -> tuple[str, str | None]:
        """(model_type, ref_model) of reward-bench's result files for a model of these stored settings."""
        return cls.reward_bench_type, None

    @classmethod
    def reusable_process(cls, config: Any) -> bool:
        """Whether a replica's process may load another model after this one closes, instead of a new process
        being started (the scheduler reuses it for the next model of the same shape on the same GPUs).

        Default: yes when the model runs in this process on transformers (or needs no weights) and loads no code of
        its own: dropping it frees its memory. No for vLLM engines (their worker processes and GPU memory are only
        reliably freed by the process's exit), HTTP clients, and `trust_remote_code` models (their code stays
        imported)."""
        caps = cls.capabilities(config)
        return caps.backend in ("transformers", "none") and not caps.trust_remote_code

    @classmethod
    def cache_key(cls, config: Any, request: Request) -> str | None:
        """The key under which this request's outcome is cached, or None: never cached."""
        return content_key(request) if cls.cacheable else None

    def __init__(self, config: Any, ctx: ActorContext, name: str):
        self.config = config
        self.ctx = ctx
        self.name = name

    @classmethod
    def presentation(cls, config: Any) -> Presentation:
        """How this kind, with this config, is shown items (default: pointwise scores)."""
        return Presentation()

    @abstractmethod
    def settings(self) -> InferenceSettings: ...

    @abstractmethod
    def score(self, requests: list[Request]) -> list[ScoreOutcome]:
        """Score a batch of requests (a whole shard); return one outcome per request, in order.

        Pointwise kinds only ever get `ScoreRequest`s; kinds whose presentation compares get `CompareRequest`s
        and, for items that are always rated (RewardBench 2 Ties), `ScoreRequest`s too.
        Raise to fail the whole call: the worker then bisects the batch to isolate the item that raised.
        """

    def close(self) -> None:
        """Release the model (engine processes, GPU memory). Called before the replica is killed."""
