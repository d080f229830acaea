"""vLLM pooling backend for sequence-classifier reward models (`backend: vllm`).

Same interface and same tokenisation as `rmorch.actors.backends.hf.TransformersClassifier`: the conversation is rendered
and encoded by `rmorch.actors.backends.text` with the transformers tokenizer of the same path (so chat template,
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
- A causal LM (no score head) is refused at load: vLLM cannot add a head. The transformers backend loads it with a
  new, seeded head.
"""

from __future__ import annotations

import math
from typing import Any

from rmorch.actors.backends.hf import load_tokenizer, local_model_path, offline_hint
from rmorch.actors.backends.text import Encoded, encode_request, setup_chat_template
from rmorch.actors.backends.vllm_engine import engine_dtype, shutdown, start_engine
from rmorch.actors.base import ActorContext, ScoreOutcome, ScoreRequest
from rmorch.core.errors import UserError

PROB_EPS = 1e-12


def prob_to_logit(p: float) -> float:
    """Inverse sigmoid, clamped so 0 and 1 map to finite values (about -+27.6)."""
    p = min(max(float(p), PROB_EPS), 1.0 - PROB_EPS)
    return math.log(p) - math.log1p(-p)


class VllmClassifier:
    """Loads the model once into a vLLM pooling engine; scores each call in one batched `classify`."""

    def __init__(self, config: Any, ctx: ActorContext, model_name: str, activation: bool = False):
        from transformers import AutoConfig


        self.config = config
        self.activation = activation
        path = local_model_path(config, model_name)
        self.tokenizer = load_tokenizer(path, config, model_name)
        try:
            hf_config = AutoConfig.from_pretrained(
                path, trust_remote_code=config.trust_remote_code, revision=config.revision
            )
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': cannot load '{config.path}': {e}{offline_hint(path)}") from None
        self.template = setup_chat_template(self.tokenizer, config.chat_template, model_name)
        trained = any("SequenceClassification" in a for a in (hf_config.architectures or []))
        if not trained:  # vLLM has no score head to add to a causal LM: every request would fail
            raise UserError(f"model '{model_name}': {config.path} is not a sequence classifier (architectures: "
                            f"{hf_config.architectures}); `backend: vllm` needs a reward-model checkpoint with its "
                            f"score head. `backend: transformers` loads it with a new, seeded head")
        if getattr(hf_config, "num_labels", 1) > 1:
            raise UserError(f"model '{model_name}' has {hf_config.num_labels} outputs (a multi-objective RM): use "
                            f"`backend: transformers` with `objective:`")
        limit = getattr(hf_config.get_text_config(), "max_position_embeddings", None)
        self.max_length = min(config.max_length, limit) if limit else config.max_length

        from vllm import PoolingParams

        self.llm = start_engine(model_name, path, runner="pooling", dtype=config.dtype,
                                tensor_parallel_size=config.tensor_parallel_size,
                                max_model_len=self.max_length, seed=ctx.seed,
                                trust_remote_code=config.trust_remote_code, revision=config.revision,
                                **({"enforce_eager": True} if config.enforce_eager else {}))
        self.dtype = engine_dtype(self.llm)
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
        llm, self.llm = getattr(self, "llm", None), None
        shutdown(llm)
