"""What every text-generation backend of a judge speaks: chat conversations in, generations out.

A backend (`vllm_generate.VllmGenerator`, `openai_http.OpenAIChatBackend`) is built once per replica and reused for
every call. `generate` takes a whole shard's conversations and returns one `Generation` per conversation, in
order. A conversation that fails on its own (server error after retries, prompt too long) gets a `Generation` with
`error` set; the others are unaffected. Raising is reserved for failures of the whole call.

Vision-language judges pass each conversation's images (`images`); text-only judges leave it None.
Sampling is seeded per conversation (`seeds[i]`), so a sampled verdict does not depend on batch composition.
Probability verdicts (`verdict_probs`) read the labels' probabilities instead of generating text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rmorch.actors.backends.verdict_probs import LabelProbs
    from rmorch.actors.judge_prompts import ImageInput

Message = dict[str, str]  # {"role": ..., "content": ...}


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_tokens: int = 512


@dataclass
class Generation:
    text: str | None = None
    n_prompt_tokens: int | None = None
    n_output_tokens: int | None = None
    finish_reason: str | None = None  # "stop", "length", ...
    error: str | None = None


class Generator(Protocol):
    backend: str  # recorded in result rows: "vllm", "openai"
    dtype: str | None  # resolved dtype, or None where unknown (remote servers)
    max_model_len: int | None  # prompt + output token limit, or None where unknown
    chat_template: str  # recorded source of the chat template ("tokenizer", "file:NAME", "server")

    def prompt_tokens(self, messages: list[Message], images: list[ImageInput] | None = None) -> int | None:
        """Tokens the prompt of this conversation takes (after the chat template, images included), or None if
        unknown."""
        ...

    def generate(self, conversations: list[list[Message]], sampling: SamplingConfig, seeds: list[int],
                 images: list[list[ImageInput]] | None = None) -> list[Generation]:
        """One Generation per conversation; `images[i]`: the images shown with conversation i (vision judges)."""
        ...

    def verdict_probs(self, conversations: list[list[Message]], prefix: str, labels: list[str],
                      images: list[list[ImageInput]] | None = None) -> list[LabelProbs]:
        """Probability verdicts (`verdict_probs.py`): per conversation, the probabilities of `labels` right after
        the reply is started with `prefix`. A backend that cannot read them raises UserError at the first call."""
        ...

    def close(self) -> None: ...
