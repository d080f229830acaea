"""A simulated model kind for scheduling benchmarks and tests: no weights, only time.

Loading sleeps `load_seconds`; scoring a batch sleeps in proportion to its cost, `tokens x size_b /
tensor_parallel_size x seconds_per_token_b`, with tokens estimated exactly as the planner does (characters of prompt
and response / 4), so the planner's cost and the time spent agree and a benchmark can compute the lower bound of a
sweep from the plan alone. Scores are a hash of (model name, item, candidate): reproducible whatever the placement.

Import this module (as `bench.simulated_model`, with the repository root on the path of the driver and of the Ray
workers) to register the kind `simulated`.
"""

from __future__ import annotations

import hashlib
import struct
import time
from dataclasses import dataclass

from rmorch.actors import register_kind
from rmorch.actors.base import (
    ActorContext,
    Capabilities,
    InferenceSettings,
    ModelKind,
    Request,
    ScoreOutcome,
    ScoreRequest,
)
from rmorch.orchestrator.plan.costs import CHARS_PER_TOKEN


@dataclass(frozen=True)
class SimulatedConfig:
    size_b: float = 1.0  # billions of parameters: scoring time grows with it (the spec key params_b is the
    # scheduler's hint for real models; this kind reports its size itself, through its capabilities)
    tensor_parallel_size: int = 1  # GPUs per replica (the scheduler makes a STRICT_PACK placement group above 1)
    load_seconds: float = 1.0
    seconds_per_token_b: float = 1e-6  # seconds per (token x billion parameters) on one GPU


def request_tokens(r: Request) -> float:
    """Tokens of one request, as rmorch.orchestrator.plan.units estimates them (prompt once per candidate)."""
    prompt = sum(len(m["content"]) for m in r.prompt)
    body = len(r.response) if isinstance(r, ScoreRequest) else sum(len(x) for x in r.responses)
    return (prompt + body) / CHARS_PER_TOKEN


@register_kind
class Simulated(ModelKind):
    """Sleeps instead of computing: load_seconds once, then tokens x params / GPUs x a scale per batch."""

    kind = "simulated"
    Config = SimulatedConfig
    uses_gpu = True
    description = "benchmark stand-in: sleeps in proportion to tokens x parameters"

    @classmethod
    def capabilities(cls, config: SimulatedConfig) -> Capabilities:
        return Capabilities(tensor_parallel_size=config.tensor_parallel_size, param_count=config.size_b * 1e9)

    def __init__(self, config: SimulatedConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        time.sleep(config.load_seconds)

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="simulated")

    def score(self, requests: list[Request]) -> list[ScoreOutcome]:
        c = self.config
        tokens = sum(request_tokens(r) for r in requests)
        time.sleep(tokens * c.size_b / c.tensor_parallel_size * c.seconds_per_token_b)
        return [ScoreOutcome(score=self._draw(r)) for r in requests]

    def _draw(self, r: Request) -> float:
        candidate = r.candidate if isinstance(r, ScoreRequest) else r.permutation
        digest = hashlib.sha256(f"{self.name}\x00{r.item_id}\x00{candidate}".encode()).digest()
        return (struct.unpack(">Q", digest[:8])[0] >> 11) / float(1 << 53)
