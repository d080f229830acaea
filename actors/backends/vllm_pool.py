"""vLLM pooling backend for sequence-classifier reward models (`backend: vllm`).

Same interface and same tokenisation as `actors.backends.hf.TransformersClassifier`: the conversation is rendered
and encoded by `actors.backends.text` with the transformers tokenizer of the same path (so chat template,
duplicate-BOS guard and truncation are identical), and the token ids go to vLLM as `TokensPrompt`s. vLLM never
tokenises anything itself.

- One engine (`vllm.LLM(runner="pooling")`) per backend instance, built in `__init__` and reused for every call;
  engine start costs tens of seconds. `close()` shuts the engine core down (without it the process exits with 134).
- Every `score()` call sends all its requests to the engine in ONE `llm.classify([...])` call; vLLM does the
  batching (continuous batching under its token budget), never one request at a time.
- Scores are raw logits, like the transformers backend. By default vLLM applies the classifier's activation
  (a sigmoid for a single-label classifier) and returns probabilities; we ask for the raw logit with
  `PoolingParams(use_activation=False)`. Where an engine still returns probabilities (`activation=True` here),
  `prob_to_logit` turns them back into logits (log p - log1p(-p), p clamped into [1e-12, 1 - 1e-12] so a saturated
  sigmoid gives a finite +-27.6 instead of inf); that round trip loses precision for large |logit| in float32.
- A causal LM loaded as a classifier gets a new score head in both backends, but they initialise it differently:
  scores are then only comparable within one backend.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from actors.backends.text import Encoded, encode_request, setup_chat_template
from actors.base import ActorContext, ScoreOutcome, ScoreRequest
from orchestrator.errors import UserError

log = logging.getLogger(__name__)

PROB_EPS = 1e-12


def prob_to_logit(p: float) -> float:
    """Inverse sigmoid, clamped so 0 and 1 map to finite values (about -+27.6)."""
    p = min(max(float(p), PROB_EPS), 1.0 - PROB_EPS)
    return math.log(p) - math.log1p(-p)


def _set_vllm_cpu_defaults() -> None:
    # Without a KV-cache size the CPU engine refuses to start on small machines; by default it also reserves one
    # core for its front end, which halves throughput on 2 cores. Both only as defaults: the user's env wins.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


class VllmClassifier:
    """Loads the model once into a vLLM pooling engine; scores each call in one batched `classify`."""

    def __init__(self, config: Any, ctx: ActorContext, model_name: str, activation: bool = False):
        from transformers import AutoConfig

        from actors.backends.hf import load_tokenizer, local_model_path, offline_hint, resolve_dtype

        self.config = config
        self.activation = activation
        path = local_model_path(config, model_name)
        self.dtype = resolve_dtype(config.dtype, ctx.device)
        self.tokenizer = load_tokenizer(path, config, model_name)
        try:
            hf_config = AutoConfig.from_pretrained(
                path, trust_remote_code=config.trust_remote_code, revision=config.revision
            )
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': cannot load '{config.path}': {e}{offline_hint(path)}") from None
        self.template = setup_chat_template(self.tokenizer, config.chat_template, model_name)
        limit = getattr(hf_config.get_text_config(), "max_position_embeddings", None)
        self.max_length = min(config.max_length, limit) if limit else config.max_length

        _set_vllm_cpu_defaults()
        from vllm import LLM, PoolingParams

        kwargs: dict[str, Any] = {}
        tp = getattr(config, "tensor_parallel_size", 1)
        if tp > 1:
            kwargs["tensor_parallel_size"] = tp
        try:
            self.llm = LLM(
                model=path,
                runner="pooling",
                dtype=self.dtype,
                max_model_len=self.max_length,
                seed=ctx.seed,
                trust_remote_code=config.trust_remote_code,
                revision=config.revision,
                **kwargs,
            )
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': vLLM cannot load '{config.path}': {e}{offline_hint(path)}") from None
        self.pooling_params = PoolingParams(use_activation=activation)

    def encode(self, r: ScoreRequest) -> Encoded:
        return encode_request(self.tokenizer, self.template, r, self.max_length, self.config.truncation_side)

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        from vllm.inputs import TokensPrompt

        if not requests:
            return []
        encoded = [self.encode(r) for r in requests]
        outputs = self.llm.classify(
            [TokensPrompt(prompt_token_ids=e.ids) for e in encoded],
            pooling_params=self.pooling_params,
            use_tqdm=False,
        )
        out = []
        for e, o in zip(encoded, outputs, strict=True):
            value = float(o.outputs.probs[0])
            if self.activation:
                value = prob_to_logit(value)
            out.append(ScoreOutcome(score=value, n_tokens=len(e.ids), truncated=e.truncated))
        return out

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception as e:  # noqa: BLE001 - closing is best effort
            log.warning("vLLM engine shutdown failed: %s", e)
