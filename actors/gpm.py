"""General Preference embedding Models (GPM; Zhang et al. 2024, arXiv 2410.02197): each response is embedded once,
then every pair is scored with a skew-symmetric form, so preferences need not be transitive (unlike a scalar reward)
and a pair in both orders gets exactly opposite scores.

Model (the paper's public code, general-preference/general-preference-model):
- The base LM reads the chat-rendered (prompt + response), its last token replaced by EOS (as GPM training and
  evaluation do). `value_head` (a bias-free Linear, hidden -> 2k) maps the last token's final hidden state to v,
  normalised to unit length.
- An optional `prompt_head` (hidden -> k) maps the hidden state at the prompt's last token to eigenvalues
  lambda = softmax(prompt_head(h)); without one, every lambda_i = 1.
- s(y1 > y2) = sum_i lambda_i (v1[2i] v2[2i+1] - v1[2i+1] v2[2i]) = v1^T R^T v2 with R the block-diagonal
  skew-symmetric matrix of blocks [[0, -lambda_i], [lambda_i, 0]]; P(y1 beats y2) = sigmoid(s / tau).
The prompt's hidden state is causal, so every response of an item shares it; it is taken from the pass of the item's
lowest-indexed candidate, so it does not depend on the presented order. Tokenisation is rmorch's shared one
(rmorch.actors.backends.text): unlike the official code, a BOS doubled by template + tokenizer is reduced to one.

Checkpoint layout: a causal-LM checkpoint directory (config.json, tokenizer, safetensors shards, possibly with a
`model.safetensors.index.json`) whose tensors also hold `value_head.weight` [2k, hidden] and optionally
`prompt_head.weight` [k, hidden]. The base model loads with `AutoModel` (a checkpoint's own code only with
`trust_remote_code: true`; its weights from safetensors unless `allow_pickle: true`); the two heads are read straight
from the safetensors files (only those tensors, never from pickle files), in float32.

Rows: comparison rows (order, verdict). With the N presented responses, pref_i = mean over j != i of
sigmoid(s(i, j) / tau); the verdict is the response with the highest pref (for N = 2: the one whose s > 0); an exact
tie at the top is left unparsed (the judge metrics' chance credit: 0.5 pairwise, 1/N otherwise). `score` = pref of
the first presented response (N = 2: P(first beats second)); `scores` = s(i, j) for every ordered pair i != j in the
presented order, row-major (N = 2: [s(a, b), s(b, a)]). Each distinct (prompt, response) is embedded once per call:
an item with N candidates costs N forward sequences, not N^2.

Items a suite always has rated pointwise (RewardBench 2 Ties) get error rows: a GPM has no pointwise score.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rmorch.actors import register_kind
from rmorch.actors.backends.model_files import check_model_files, safetensors_only
from rmorch.actors.backends.text import encode, render, setup_chat_template, token_budget_batches
from rmorch.actors.base import (
    ActorContext,
    Capabilities,
    CompareRequest,
    InferenceSettings,
    ModelKind,
    Presentation,
    Request,
    ScoreOutcome,
)
from rmorch.actors.config import BatchingConfig, ChatTemplateConfig, WeightsConfig
from rmorch.core.errors import SpecError, UserError

VALUE_HEAD = "value_head.weight"
PROMPT_HEAD = "prompt_head.weight"
NO_POINTWISE = "a GPM has no pointwise score: items its suite always rates (e.g. RewardBench 2 Ties) are not scored"


@dataclass(frozen=True, kw_only=True)
class GpmConfig(WeightsConfig, BatchingConfig, ChatTemplateConfig):
    # path: a GPM checkpoint (base LM + value_head (+ prompt_head) tensors); dtype: the base LM's (the heads run in
    # float32); trust_remote_code and allow_pickle: the base model's (the heads load from safetensors only)
    max_length: int = 2048  # tokens (the official evaluation's default); longer inputs are truncated and flagged
    truncation_side: Literal["left", "right"] = "right"  # right (as the official code) keeps the prompt whole
    tau: float = 0.1  # P = sigmoid(s / tau); GPM checkpoints were trained with general_preference_tau 0.1
    value_head_dim: int | None = None  # 2k; None: read from value_head.weight, else checked against it
    prompt_head: bool | None = None  # None: use it if the checkpoint has one; True: require it; False: lambda = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.tau > 0:
            raise SpecError("tau", "must be > 0")
        if self.value_head_dim is not None and (self.value_head_dim < 2 or self.value_head_dim % 2):
            raise SpecError("value_head_dim", "must be an even number >= 2")


@dataclass(frozen=True)
class GpmHeads:
    """The GPM head weights, float32: value [2k, hidden] and, if the model has one, prompt [k, hidden]."""

    value: Any  # torch.Tensor
    prompt: Any | None  # torch.Tensor | None


@dataclass(frozen=True)
class _Input:
    """One (prompt, response) sequence as the model reads it, and where its prompt ends."""

    ids: tuple[int, ...]
    prompt_end: int  # position of the prompt's last token (its hidden state feeds the prompt head)
    truncated: bool


def preference_score(v1: Sequence[float], v2: Sequence[float], eigenvalues: Sequence[float]) -> float:
    """s(y1 > y2) = sum_i lambda_i (v1[2i] v2[2i+1] - v1[2i+1] v2[2i]).

    Exactly antisymmetric in floating point: swapping v1 and v2 negates every term exactly (products commute, a - b
    is exactly -(b - a)) and math.fsum is correctly rounded, so preference_score(b, a) == -preference_score(a, b)."""
    return math.fsum(lam * (v1[2 * i] * v2[2 * i + 1] - v1[2 * i + 1] * v2[2 * i]) for i, lam in enumerate(eigenvalues))


def read_head_tensors(model_dir: str, names: Sequence[str]) -> dict[str, Any]:
    """The named tensors from a checkpoint's safetensors files (only those are read), float32; absent names are
    left out. Uses the shard index when there is one, else looks in every *.safetensors file."""
    import torch
    from safetensors import safe_open

    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map: dict[str, str] = json.load(f).get("weight_map", {})
        where = {n: [weight_map[n]] for n in names if n in weight_map}
    else:
        files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
        where = {n: files for n in names}
    out = {}
    for name, files in where.items():
        for file in files:
            with safe_open(os.path.join(model_dir, file), framework="pt") as f:
                if name in f.keys():  # noqa: SIM118 -- safe_open has keys(), no __contains__
                    out[name] = f.get_tensor(name).to(torch.float32)
                    break
    return out


def load_heads(model_dir: str, config: GpmConfig, model_name: str, hidden_size: int) -> GpmHeads:
    """The checkpoint's heads, checked against the config and the base model's hidden size."""
    tensors = read_head_tensors(model_dir, [VALUE_HEAD, PROMPT_HEAD])
    value = tensors.get(VALUE_HEAD)
    if value is None:
        raise UserError(f"model '{model_name}': {model_dir} has no '{VALUE_HEAD}' tensor; not a GPM checkpoint")
    dim = value.shape[0]
    if value.dim() != 2 or value.shape[1] != hidden_size or dim % 2:
        raise UserError(f"model '{model_name}': '{VALUE_HEAD}' has shape {tuple(value.shape)}; a GPM needs "
                        f"[2k, {hidden_size}] (an even embedding dimension over the hidden size)")
    if config.value_head_dim is not None and config.value_head_dim != dim:
        raise UserError(f"model '{model_name}': value_head_dim is {config.value_head_dim} in the spec but the "
                        f"checkpoint's value head has {dim} outputs")
    prompt = tensors.get(PROMPT_HEAD)
    if config.prompt_head is True and prompt is None:
        raise UserError(f"model '{model_name}': prompt_head is true in the spec but {model_dir} has no "
                        f"'{PROMPT_HEAD}' tensor")
    if config.prompt_head is False:
        prompt = None
    if prompt is not None and tuple(prompt.shape) != (dim // 2, hidden_size):
        raise UserError(f"model '{model_name}': '{PROMPT_HEAD}' has shape {tuple(prompt.shape)}; expected "
                        f"[{dim // 2}, {hidden_size}] (one eigenvalue per 2-dim block of the value head)")
    return GpmHeads(value, prompt)


@register_kind
class Gpm(ModelKind):
    kind = "gpm"
    Config = GpmConfig
    # 2: one row per forward pass on transformers (rmorch.actors.backends.text.ROWS_PER_PASS) moved bf16 numbers
    version = "2"
    description = "general preference embedding model (GPM): one embedding per response, skew-symmetric pair scores"

    @classmethod
    def presentation(cls, config: GpmConfig) -> Presentation:
        # Every candidate of an item in one request (any N), one order: the scores do not depend on it.
        return Presentation("nway", "single")

    @classmethod
    def capabilities(cls, config: GpmConfig) -> Capabilities:
        return config.weights_capabilities("transformers")

    def __init__(self, config: GpmConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        # late: torch and transformers (and the backend importing them) load with the model, not with rmorch.actors
        import torch
        from transformers import AutoModel, AutoTokenizer

        from rmorch.actors.backends.hf import DTYPES, local_model_dir, offline_hint, resolve_dtype

        torch.set_num_threads(max(1, ctx.threads))
        path = local_model_dir(config.path, name)
        trust = config.trust_remote_code
        try:
            if not os.path.isdir(path):  # a hub id: the heads are read from the files, so fetch them first
                from huggingface_hub import snapshot_download

                patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
                patterns += (["*.py"] if trust else []) + (["*.bin", "*.pt"] if config.allow_pickle else [])
                path = snapshot_download(path, revision=config.revision, allow_patterns=patterns)
            check_model_files(path, config, name)  # local now: pickle weights and custom code, before loading
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
            self.dtype = resolve_dtype(config.dtype, ctx.device)
            self.encoder, info = AutoModel.from_pretrained(path, dtype=DTYPES[self.dtype], output_loading_info=True,
                                                           trust_remote_code=trust,
                                                           use_safetensors=safetensors_only(config))
        except (OSError, ValueError) as e:
            raise UserError(f"model '{name}': cannot load '{config.path}': {e}{offline_hint(path)}") from None
        if info.get("missing_keys"):
            # A base-model prefix the loader did not recognise would leave the LM randomly initialised.
            raise UserError(f"model '{name}': the base model's weights were not found in '{config.path}' "
                            f"(missing e.g. {sorted(info['missing_keys'])[:3]})")
        self.encoder.to(ctx.device).eval()
        hidden = self.encoder.config.get_text_config().hidden_size
        heads = load_heads(path, config, name, hidden)
        self.value_head = heads.value.to(ctx.device)
        self.prompt_head = None if heads.prompt is None else heads.prompt.to(ctx.device)
        self.template = setup_chat_template(self.tokenizer, config.chat_template, name)
        limit = getattr(self.encoder.config.get_text_config(), "max_position_embeddings", None)
        self.max_length = min(config.max_length, limit) if limit else config.max_length
        if self.tokenizer.eos_token_id is None:
            raise UserError(f"model '{name}': its tokenizer has no EOS token (a GPM embeds at a final EOS)")
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.sequences_embedded = 0  # forward sequences run so far (each distinct input once per call)

    @property
    def embedding_dim(self) -> int:
        return int(self.value_head.shape[0])

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="transformers", dtype=self.dtype, max_length=self.max_length,
                                 truncation_side=self.config.truncation_side, chat_template=self.template)

    def score(self, requests: list[Request]) -> list[ScoreOutcome]:
        compares = [r for r in requests if isinstance(r, CompareRequest)]
        for r in compares:
            if len(r.responses) < 2:
                raise ValueError(f"item '{r.item_id}': a GPM compares at least two responses")
        inputs = [self._inputs(r) for r in compares]
        # Distinct sequences, each embedded once; the prompt position is needed only where an item takes lambda.
        index: dict[tuple[int, ...], int] = {}
        for item in inputs:
            for x in item:
                index.setdefault(x.ids, len(index))
        seqs = list(index)
        prompt_positions: dict[int, int] = {}
        if self.prompt_head is not None:
            for r, item in zip(compares, inputs):
                x = item[_lambda_source(r)]
                prompt_positions[index[x.ids]] = x.prompt_end
        embeddings, prompt_states = self._embed(seqs, prompt_positions)
        outcomes = iter([self._compare(r, item, index, embeddings, prompt_states) for r, item in zip(compares, inputs)])
        return [next(outcomes) if isinstance(r, CompareRequest) else ScoreOutcome(error=NO_POINTWISE)
                for r in requests]

    def _inputs(self, r: CompareRequest) -> list[_Input]:
        """The model input of each presented response: the chat with the response as the assistant turn, truncated,
        its last token replaced by EOS; and the prompt's last position in it."""
        side = self.config.truncation_side
        n_prompt = len(encode(self.tokenizer, render(self.tokenizer, list(r.prompt), self.template)).ids)
        out = []
        for response in r.responses:
            text = render(self.tokenizer, list(r.prompt) + [{"role": "assistant", "content": response}], self.template)
            full = encode(self.tokenizer, text)
            kept = encode(self.tokenizer, text, self.max_length, side)
            ids = list(kept.ids)
            ids[-1] = self.tokenizer.eos_token_id
            cut = len(full.ids) - len(ids) if side == "left" else 0
            # The prompt's last token; clamped inside the kept tokens, before the final EOS where there is room.
            prompt_end = max(0, min(n_prompt - 1 - cut, len(ids) - 2))
            out.append(_Input(tuple(ids), prompt_end, kept.truncated))
        return out

    def _embed(self, seqs: list[tuple[int, ...]], prompt_positions: dict[int, int]
               ) -> tuple[list[list[float]], dict[int, list[float]]]:
        """Unit embeddings of every sequence, and the eigenvalues at the prompt position of the ones asked for."""
        import torch

        embeddings: list[list[float]] = [[] for _ in seqs]
        eigen: dict[int, list[float]] = {}
        with torch.inference_mode():
            for batch in token_budget_batches([len(s) for s in seqs], self.config.batch_tokens):
                width = max(len(seqs[i]) for i in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):  # right padding: real tokens keep positions 0..n-1
                    ids[row, : len(seqs[i])] = torch.tensor(seqs[i], dtype=torch.long)
                    mask[row, : len(seqs[i])] = 1
                hidden = self.encoder(input_ids=ids.to(self.ctx.device),
                                      attention_mask=mask.to(self.ctx.device)).last_hidden_state
                self.sequences_embedded += len(batch)
                rows = torch.arange(len(batch))
                last = torch.tensor([len(seqs[i]) - 1 for i in batch])
                v = torch.nn.functional.normalize(hidden[rows, last].float() @ self.value_head.T, p=2, dim=-1)
                for row, i in enumerate(batch):
                    embeddings[i] = v[row].double().cpu().tolist()
                    if i in prompt_positions:
                        h = hidden[row, prompt_positions[i]].float()
                        eigen[i] = torch.softmax(h @ self.prompt_head.T, dim=-1).double().cpu().tolist()
        return embeddings, eigen

    def _compare(self, r: CompareRequest, item: list[_Input], index: dict[tuple[int, ...], int],
                 embeddings: list[list[float]], eigen: dict[int, list[float]]) -> ScoreOutcome:
        vs = [embeddings[index[x.ids]] for x in item]
        lam = eigen[index[item[_lambda_source(r)].ids]] if self.prompt_head is not None else [1.0] * (len(vs[0]) // 2)
        n = len(vs)
        s = [[0.0 if i == j else preference_score(vs[i], vs[j], lam) for j in range(n)] for i in range(n)]
        pref = [math.fsum(_sigmoid(s[i][j] / self.config.tau) for j in range(n) if j != i) / (n - 1)
                for i in range(n)]
        top = [i for i in range(n) if pref[i] == max(pref)]
        choice = top[0] if len(top) == 1 else None
        return ScoreOutcome(score=pref[0], scores=[s[i][j] for i in range(n) for j in range(n) if i != j],
                            choice=choice, parsed=choice is not None, n_tokens=sum(len(x.ids) for x in item),
                            truncated=any(x.truncated for x in item))


def _lambda_source(r: CompareRequest) -> int:
    """The presented position of the item's lowest-indexed candidate: its pass gives the prompt's hidden state, so
    the eigenvalues do not depend on the presented order."""
    return r.order.index(min(r.order))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
