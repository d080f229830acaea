"""vLLM backend for log-probability rewards (`implicit` kind, `backend: vllm`): per-token log pi(y_t | x, y_<t).

Same interface and the same encoding as `hf_logprobs.TransformersLogprobs`: `encode` IS that class's method (chat
template of a transformers tokenizer of the same path, duplicate-BOS guard, longest-common-prefix prompt mask,
left-first truncation by `hf_logprobs.response_tokens`), so both backends score exactly the same token ids. The ids
go to vLLM as `TokensPrompt`s; vLLM never tokenises anything.

- One engine (`vllm.LLM`) per instance, built in `__init__` and reused; `close()` shuts its engine core down
  (without it the process exits with 134). The implicit kind runs policy and reference as two engines in one
  replica: each gets `gpu_memory_utilization` (`vllm_engine.memory_share`: 0.425 when two share a GPU) and, on
  CPU, the KV cache of `VLLM_CPU_KVCACHE_SPACE` (1 GiB by default, set by `start_engine`).
- Every `token_logprobs` call is ONE batched `llm.generate([...], SamplingParams(max_tokens=1, prompt_logprobs=0))`:
  `prompt_logprobs[t]` holds the log-prob of the actual prompt token t given tokens < t (from the raw logits, before
  any sampling transform); entries start..end are the response tokens. The one generated token is discarded.
- The engine's `max_model_len` is `max_length + 1` (room for that one generated token); where the model's
  `max_position_embeddings` does not allow that, inputs are fitted to one token less than the transformers backend
  would keep.
- Prefix caching is off: prompt log-probs must be computed for every position of every request.
"""

from __future__ import annotations

from typing import Any

from rmorch.actors.backends.hf import load_tokenizer, local_model_dir, offline_hint
from rmorch.actors.backends.hf_logprobs import ResponseTokens, TransformersLogprobs
from rmorch.actors.backends.text import setup_chat_template
from rmorch.actors.backends.vllm_engine import engine_dtype, shutdown, start_engine
from rmorch.actors.base import ActorContext
from rmorch.core.errors import UserError


class VllmLogprobs:
    """A causal LM in one vLLM engine; `token_logprobs` of many encoded responses in one batched call."""

    backend = "vllm"

    def __init__(self, path: str, config: Any, ctx: ActorContext, model_name: str, tokenizer: Any = None,
                 gpu_memory_utilization: float = 0.9):
        from transformers import AutoConfig


        self.llm: Any = None
        self.config = config
        local = local_model_dir(path, model_name)
        self.tokenizer = tokenizer or load_tokenizer(local, config, model_name)
        try:
            hf_config = AutoConfig.from_pretrained(local, trust_remote_code=config.trust_remote_code,
                                                   revision=config.revision)
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': cannot load '{path}': {e}{offline_hint(local)}") from None
        self.template = (setup_chat_template(self.tokenizer, config.chat_template, model_name)
                         if tokenizer is None else config.chat_template)
        limit = getattr(hf_config.get_text_config(), "max_position_embeddings", None)
        max_model_len = config.max_length + 1
        if limit:
            max_model_len = min(max_model_len, limit)
        self.max_length = max_model_len - 1  # the prompt plus the one generated token fit the engine
        self.llm = start_engine(model_name, local, dtype=config.dtype, max_model_len=max_model_len, seed=ctx.seed,
                                gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=False,
                                trust_remote_code=config.trust_remote_code, revision=config.revision)
        self.dtype = engine_dtype(self.llm)

    # The transformers backend's encoding, verbatim (uses self.tokenizer, self.template, self.max_length).
    encode = TransformersLogprobs.encode

    def token_logprobs(self, encoded: list[ResponseTokens]) -> list[list[float]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if self.llm is None:
            raise RuntimeError("VllmLogprobs is closed")
        if not encoded:
            return []
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        results = self.llm.generate([TokensPrompt(prompt_token_ids=e.ids) for e in encoded], params,
                                    use_tqdm=False)
        out = []
        for e, r in zip(encoded, results, strict=True):
            plp = r.prompt_logprobs  # [None, {token_id: Logprob, ...}, ...], one entry per prompt token
            out.append([float(plp[t][e.ids[t]].logprob) for t in range(e.start, len(e.ids))])
        return out

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        shutdown(llm)
