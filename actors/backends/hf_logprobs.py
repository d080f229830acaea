"""transformers backend for log-probability rewards: per-token log pi(y_t | x, y_<t) of each response.

Encoding (same chat template and duplicate-BOS guard as the classifiers, `rmorch.actors.backends.text`): the prompt with
the generation prompt, and the whole conversation; the response tokens are those after the longest common prefix.
Batches are length-sorted under a token budget and right-padded; log-softmax in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rmorch.actors.backends.hf import (
    DTYPES,
    device_placement,
    load_tokenizer,
    local_model_dir,
    offline_hint,
    place_model,
    resolve_dtype,
)
from rmorch.actors.backends.model_files import safetensors_only
from rmorch.actors.backends.text import encode, pass_tensors, render, rows_per_pass, setup_chat_template, width_batches
from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.core.errors import UserError


@dataclass(frozen=True)
class ResponseTokens:
    ids: list[int]  # the sequence the model reads (after truncation)
    start: int  # index in `ids` of the first response token
    truncated: bool


def response_tokens(prompt_ids: list[int], full_ids: list[int], max_length: int) -> ResponseTokens:
    """Mask the prompt exactly (longest common prefix), then fit max_length: drop prompt tokens from the left first
    (the first token is kept as context), then cut the response at its end."""
    start = 0
    for a, b in zip(prompt_ids, full_ids):
        if a != b:
            break
        start += 1
    start = max(min(start, len(full_ids) - 1), 1)  # the first token has no prediction: it is always context
    ids, truncated = full_ids, False
    if len(ids) > max_length:
        truncated = True
        drop = min(len(ids) - max_length, start - 1)
        ids = ids[:1] + ids[1 + drop:]
        start -= drop
        ids = ids[:max_length]
    return ResponseTokens(ids, start, truncated)


class TransformersLogprobs:
    """A causal LM loaded once; `token_logprobs` of many encoded responses in token-budget batches."""

    def __init__(self, path: str, config: Any, ctx: ActorContext, model_name: str, tokenizer: Any = None,
                 models_in_replica: int = 1):
        from transformers import AutoModelForCausalLM

        self.config = config
        self.device = ctx.device
        torch.set_num_threads(max(1, ctx.threads))
        local = local_model_dir(path, model_name, config)  # refuses pickle weights / custom code not opted in
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.tokenizer = tokenizer or load_tokenizer(local, config, model_name)
        placement = device_placement(ctx, models_in_replica)  # several GPUs: sharded (hf.device_placement)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(local, dtype=DTYPES[self.dtype],
                                                              trust_remote_code=config.trust_remote_code,
                                                              revision=config.revision,
                                                              use_safetensors=safetensors_only(config), **placement)
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': cannot load '{path}': {e}{offline_hint(local)}") from None
        self.model = place_model(self.model, ctx, bool(placement), model_name)
        self.template = (setup_chat_template(self.tokenizer, config.chat_template, model_name)
                         if tokenizer is None else config.chat_template)
        limit = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        self.max_length = min(config.max_length, limit) if limit else config.max_length

    def encode(self, r: ScoreRequest) -> ResponseTokens:
        prompt = encode(self.tokenizer, render(self.tokenizer, list(r.prompt), self.template, generation=True)).ids
        messages = list(r.prompt) + [{"role": "assistant", "content": r.response}]
        full = encode(self.tokenizer, render(self.tokenizer, messages, self.template)).ids
        return response_tokens(prompt, full, self.max_length)

    @torch.inference_mode()
    def token_logprobs(self, encoded: list[ResponseTokens]) -> list[list[float]]:
        out: list[list[float]] = [[] for _ in encoded]
        limit = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        budget = self.config.batch_tokens
        for width, batch in width_batches([len(e.ids) for e in encoded], budget, limit):
            ids, mask = pass_tensors([encoded[i].ids for i in batch], width, rows_per_pass(width, budget), pad=0)
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(batch):
                e = encoded[i]
                targets = torch.tensor(e.ids[e.start:], dtype=torch.long, device=logp.device)
                picked = logp[row, e.start - 1 : len(e.ids) - 1].gather(-1, targets[:, None])[:, 0]
                out[i] = picked.cpu().tolist()
        return out
