"""Baselines every leaderboard should show: response length, and a seeded coin."""

from __future__ import annotations

import hashlib
import struct

from rmorch.actors import register_kind
from rmorch.actors.base import InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest


@register_kind
class Length(ModelKind):
    """score = number of characters (Unicode code points) of the response text, exactly."""

    kind = "length"
    uses_gpu = False
    cacheable = False  # counting characters is cheaper than a lookup
    description = "baseline: score = characters of the response"

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="python")

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        return [ScoreOutcome(score=float(len(r.response))) for r in requests]


@register_kind
class Random(ModelKind):
    """score = a uniform [0, 1) number derived from (seed, item, candidate): the same whatever the batching."""

    kind = "random"
    uses_gpu = False
    cacheable = False  # the draw depends on the item's identity, not its content
    description = "baseline: seeded uniform score per (item, candidate)"

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="python")

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        return [ScoreOutcome(score=self._draw(r)) for r in requests]

    def _draw(self, r: ScoreRequest) -> float:
        digest = hashlib.sha256(f"{self.ctx.seed}\x00{r.item_id}\x00{r.candidate}".encode()).digest()
        return (struct.unpack(">Q", digest[:8])[0] >> 11) / float(1 << 53)
