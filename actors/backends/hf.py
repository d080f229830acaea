"""transformers backend for sequence-classifier reward models (AutoModelForSequenceClassification).

Every loader finds its model through `local_model_path` / `local_model_dir` here, which also run the file checks of
`rmorch.actors.backends.model_files` (pickle weights, custom code) before any weights are read; transformers loaders pass
`use_safetensors=safetensors_only(config)`, so pickle weights are refused unless the spec sets `allow_pickle: true`.

Devices: a replica on one device (a GPU, a fraction of one, or the CPU) moves its model there whole. A replica of
several GPUs (`num_gpus: 2`) shards the model's layers over all of them (`device_placement`: a device map, each GPU
giving the model its share of its memory); a model that would spill to the CPU is refused. The sharded path has not
run on GPUs yet: none has been at hand.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from rmorch.actors.backends.builtin import resolve_model_path
from rmorch.actors.backends.model_files import LoadOptIns, check_model_files, safetensors_only
from rmorch.actors.backends.text import (
    Encoded,
    encode_request,
    pass_tensors,
    rows_per_pass,
    setup_chat_template,
    width_batches,
)
from rmorch.actors.base import ActorContext, ScoreOutcome, ScoreRequest
from rmorch.actors.config import WeightsConfig
from rmorch.core.errors import UserError

log = logging.getLogger(__name__)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
SHARDED_MEMORY_SHARE = 0.85  # of each GPU's memory for weights when a model is sharded; the rest: activations


def device_placement(ctx: ActorContext, models_in_replica: int = 1) -> dict[str, Any]:
    """`from_pretrained` arguments that place a model on the replica's GPUs: none on one device (the caller moves
    the model there); on several, a device map sharding its layers over all of them, each GPU giving it an equal
    part of SHARDED_MEMORY_SHARE of its memory among the replica's models."""
    if ctx.device != "cuda" or len(ctx.gpu_ids) < 2:
        return {}
    budget = {i: int(torch.cuda.get_device_properties(i).total_memory * SHARDED_MEMORY_SHARE / models_in_replica)
              for i in range(torch.cuda.device_count())}
    return {"device_map": "auto", "max_memory": budget}


def place_model(model: Any, ctx: ActorContext, sharded: bool, model_name: str) -> Any:
    """Move a model loaded whole to the replica's device; check that a sharded one sits on GPUs only."""
    if not sharded:
        return model.to(ctx.device).eval()
    spilled = sorted({str(d) for d in getattr(model, "hf_device_map", {}).values() if not isinstance(d, int)})
    if spilled:
        raise UserError(f"model '{model_name}' does not fit in the {len(ctx.gpu_ids)} GPUs of its replica (parts "
                        f"would sit on {', '.join(spilled)}): raise num_gpus or use a smaller dtype")
    return model.eval()


def resolve_dtype(name: str, device: str) -> str:
    """'auto' means bf16 where the hardware computes it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX)."""
    if name != "auto":
        return name
    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if _cpu_has_native_bf16() else "float32"


def _cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def offline_hint(path: str) -> str:
    if os.path.isdir(path):
        return ""
    return " (not a local directory: it was taken as a hub id; offline, give a local path or builtin:NAME)"


def local_model_path(config: WeightsConfig, model_name: str) -> str:
    """The directory of `config.path` (builtin names converted), refusing a local directory that is not a model or
    whose files the spec does not allow (model_files.check_model_files)."""
    return local_model_dir(config.path, model_name, config)


def local_model_dir(path: str, model_name: str, config: LoadOptIns | None = None) -> str:
    """A model path or hub id, builtin names converted, refusing a local directory that is not a model. With the
    model's `config`, also the file checks (pickle weights without `allow_pickle`, custom code without
    `trust_remote_code`) of model_files.check_model_files; callers without it must run those themselves."""
    path = resolve_model_path(path)
    if os.path.isdir(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise UserError(f"model '{model_name}': {path} has no config.json; not a transformers model directory")
    if config is not None:
        check_model_files(path, config, model_name)
    return path


def load_tokenizer(path: str, config: Any, model_name: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code,
                                             revision=config.revision)
    except (OSError, ValueError) as e:
        raise UserError(f"model '{model_name}': cannot load '{config.path}': {e}{offline_hint(path)}") from None


def _is_trained_classifier(path: str, config: Any) -> bool:
    """Whether the checkpoint already is a sequence classifier / reward model (its head is kept as saved)."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(path, trust_remote_code=config.trust_remote_code, revision=config.revision)
    except (OSError, ValueError):
        return False
    return any("SequenceClassification" in a or "RewardModel" in a for a in (cfg.architectures or []))


class TransformersClassifier:
    """Loads the model once; scores requests in length-sorted token-budget batches under inference_mode.

    `chat=False` is for callers that build the input ids themselves (cross-encoders, `forward_ids` only): no chat
    template is installed, so their config needs no `chat_template` (recorded as "none")."""

    def __init__(self, config: Any, ctx: ActorContext, model_name: str, *, chat: bool = True,
                 objective: int | str | None = None):
        from transformers import AutoModelForSequenceClassification

        self.config = config
        self.device = ctx.device
        torch.set_num_threads(max(1, ctx.threads))
        path = local_model_path(config, model_name)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.tokenizer = load_tokenizer(path, config, model_name)
        try:
            # A causal LM loaded as a classifier gets a new one-output score head: seed it so runs are reproducible.
            # A trained classifier keeps its own head (several outputs for multi-objective RMs).
            torch.manual_seed(ctx.seed)
            new_head = {} if _is_trained_classifier(path, config) else {"num_labels": 1}
            placement = device_placement(ctx)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                path,
                dtype=DTYPES[self.dtype],
                trust_remote_code=config.trust_remote_code,
                revision=config.revision,
                use_safetensors=safetensors_only(config),
                **new_head,
                **placement,
            )
        except (OSError, ValueError) as e:
            raise UserError(f"model '{model_name}': cannot load '{config.path}': {e}{offline_hint(path)}") from None
        self.model = place_model(self.model, ctx, bool(placement), model_name)
        n_out = int(getattr(self.model.config, "num_labels", 1))
        self.objective = objective
        if n_out > 1 and objective is None:
            raise UserError(f"model '{model_name}' has {n_out} outputs (a multi-objective RM): set `objective: INDEX` "
                            f"or `objective: mean` for the scalar reward; all outputs are kept in `scores`")
        if isinstance(objective, int) and not 0 <= objective < n_out:
            raise UserError(f"model '{model_name}': objective {objective} is not one of its {n_out} outputs")
        self.template = setup_chat_template(self.tokenizer, config.chat_template, model_name) if chat else "none"
        limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(config.max_length, limit) if limit else config.max_length
        self.default_pad = self.tokenizer.pad_token_id
        if self.default_pad is None:
            self.default_pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0

    def encode(self, r: ScoreRequest) -> Encoded:
        return encode_request(self.tokenizer, self.template, r, self.max_length, self.config.truncation_side)

    @torch.inference_mode()
    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        encoded = [self.encode(r) for r in requests]
        out: list[ScoreOutcome | None] = [None] * len(requests)
        limit = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        budget = self.config.batch_tokens
        for width, batch in width_batches([len(e.ids) for e in encoded], budget, limit):
            rows = rows_per_pass(width, budget)
            for i, (v, vec) in zip(batch, self.forward_ids([encoded[i].ids for i in batch], width, rows)):
                out[i] = ScoreOutcome(score=v, scores=vec, n_tokens=len(encoded[i].ids), truncated=encoded[i].truncated)
        return out  # type: ignore[return-value]

    def forward_ids(self, seqs: list[list[int]], width: int | None = None,
                    rows: int = 0) -> list[tuple[float, list[float] | None]]:
        """(scalar reward, all outputs or None) per sequence, right-padded to `width` (default: the longest), in a
        pass of `rows` rows at least (text.pass_tensors). Models whose remote code returns `score` and `rewards`
        (ArmoRM style: a gated preference score over per-objective rewards) use those."""
        width = max(width or 0, max(len(s) for s in seqs))
        pad = self._pad_id(seqs)
        ids, mask = pass_tensors(seqs, width, rows, pad)
        n = len(seqs)
        text_config = self.model.config.get_text_config()
        text_config.pad_token_id = pad
        output = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        if getattr(output, "score", None) is not None and getattr(output, "rewards", None) is not None:
            scalar = output.score.reshape(len(ids), -1)[:n, 0].float().cpu().tolist()
            return list(zip(scalar, output.rewards[:n].float().cpu().tolist()))
        logits = output.logits[:n].float()
        if logits.shape[-1] == 1:
            return [(v, None) for v in logits[:, 0].cpu().tolist()]
        objective = self.objective
        scalar = logits.mean(-1) if objective == "mean" else logits[:, objective]
        return list(zip(scalar.cpu().tolist(), logits.cpu().tolist()))

    def _pad_id(self, seqs: list[list[int]]) -> int:
        """A pad id that is not the last real token of any sequence.

        Decoder classifiers pool at the rightmost token that differs from pad_token_id; if a sequence ends with
        the pad token (common: pad == eos), they would pool one token early. Pad positions are masked, so any
        other id is as good as the real pad token.
        """
        last = {s[-1] for s in seqs}
        if self.default_pad not in last:
            return self.default_pad
        return next(i for i in range(len(self.tokenizer)) if i not in last)
