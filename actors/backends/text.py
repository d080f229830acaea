"""Turning a conversation into model input ids, the same way for every backend.

- Chat template: the tokenizer's own ("tokenizer"), a Jinja file given by path, or "plain" (role-prefixed turns) for
  models without one. The source is recorded in every result row.
- Duplicate-BOS guard: templates that already emit BOS plus a tokenizer that adds it again would start with two.
- Truncation to max_length from the recorded side; left truncation keeps a leading BOS.
- Token-budget batching: sort by length, pack so that (longest in batch) x (batch size) <= budget.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rmorch.core.errors import UserError

PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    truncated: bool


def setup_chat_template(tokenizer: Any, source: str, model: str) -> str:
    """Install the requested chat template on the tokenizer; return the recorded source name."""
    if source == "tokenizer":
        if not getattr(tokenizer, "chat_template", None):
            raise UserError(
                f"model '{model}': its tokenizer has no chat template; set `chat_template: plain` or a template file"
            )
        return "tokenizer"
    if source == "plain":
        return "plain"
    if not os.path.isfile(source):
        raise UserError(f"model '{model}': chat_template '{source}' is neither tokenizer, plain nor a file")
    try:
        with open(source, encoding="utf-8") as f:
            tokenizer.chat_template = f.read()
    except UnicodeDecodeError as e:
        raise UserError(f"model '{model}': chat_template {source} is not valid UTF-8 ({e.reason} at byte {e.start})"
                        ) from None
    try:  # a template that cannot render a conversation would make every request an error row: refuse it now
        render(tokenizer, [{"role": "user", "content": "?"}, {"role": "assistant", "content": "!"}], "file")
    except Exception as e:  # noqa: BLE001 -- jinja2 syntax and undefined errors, raise_exception(), ...
        raise UserError(f"model '{model}': chat_template {source} does not render a conversation: "
                        f"{type(e).__name__}: {e}") from None
    return f"file:{os.path.basename(source)}"


def render(tokenizer: Any, messages: list[dict[str, str]], template: str, generation: bool = False) -> str:
    """The conversation as text; `generation` appends the opening of the assistant's turn (for generating)."""
    if template == "plain":
        text = "\n\n".join(f"{PLAIN_ROLES.get(m['role'], m['role'])}: {m['content']}" for m in messages)
        return text + f"\n\n{PLAIN_ROLES['assistant']}:" if generation else text
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def encode(tokenizer: Any, text: str, max_length: int | None = None, side: str = "left") -> Encoded:
    """Token ids of a rendered text (no truncation when max_length is None)."""
    ids: list[int] = tokenizer(text, add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]  # the template emitted BOS and the tokenizer added another
    if max_length is None or len(ids) <= max_length:
        return Encoded(ids, False)
    if side == "right":
        return Encoded(ids[:max_length], True)
    if bos is not None and ids[0] == bos:
        return Encoded([bos] + ids[len(ids) - max_length + 1 :], True)
    return Encoded(ids[len(ids) - max_length :], True)


def encode_request(tokenizer: Any, template: str, request: Any, max_length: int, side: str) -> Encoded:
    """The input ids of a pointwise request: its prompt plus the response as the assistant turn."""
    messages = list(request.prompt) + [{"role": "assistant", "content": request.response}]
    return encode(tokenizer, render(tokenizer, messages, template), max_length, side)


PAD_MULTIPLE = 16  # padded widths are multiples of this (see padded_width)
ROWS_PER_PASS = 1  # rows of every forward pass (see rows_per_pass; bench/fixed_rows.py measured 1 fastest)


def padded_width(n: int, limit: int | None = None) -> int:
    """The width a sequence of `n` tokens is padded to: a function of `n` alone, never of its batch companions.

    Matrix kernels round differently for different shapes: in bf16, padding the same sequence to another width
    moves its score by up to ~0.05 logit (SmolLM2-135M). So every sequence is padded to the next multiple of
    PAD_MULTIPLE with at least one pad position (the attention mask then always takes the same, masked, code path),
    capped at `limit` (the model's position limit), and batches hold sequences of one width, in passes of one
    number of rows (`width_batches`): scores do not depend on batch size, shard size or order.
    """
    width = (n // PAD_MULTIPLE + 1) * PAD_MULTIPLE
    return max(n, min(width, limit)) if limit else width


def rows_per_pass(width: int, budget: int) -> int:
    """The rows of every forward pass over sequences padded to `width`: ROWS_PER_PASS, fewer where `budget`
    padded tokens do not hold them (at least one). A pass with fewer sequences is filled up with masked rows.

    Why fixed: bf16 matrix kernels on CPUs with AMX (oneDNN) block their sums differently for different row counts,
    so the same sequence's score moved by up to 0.045 logit between batches of 1, 7 and 64 sequences (SmolLM2-135M,
    measured); at a fixed row count a sequence's numbers do not depend on its batch companions or its row. One row
    per pass was the fastest fixed count (filler rows cost more than larger passes gain: bench/fixed_rows.py)."""
    return max(1, min(ROWS_PER_PASS, budget // width))


def width_batches(lengths: Sequence[int], budget: int, limit: int | None = None) -> list[tuple[int, list[int]]]:
    """(padded width, indices) batches: sequences grouped by `padded_width`, widest first, each batch of at most
    `rows_per_pass(width, budget)` sequences (callers fill a pass up to that many rows: `pad_rows`)."""
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(padded_width(n, limit), []).append(i)
    batches = []
    for width in sorted(groups, reverse=True):
        members = groups[width]
        size = rows_per_pass(width, budget)
        batches.extend((width, members[j : j + size]) for j in range(0, len(members), size))
    return batches


def pass_tensors(seqs: Sequence[Sequence[int]], width: int, rows: int, pad: int) -> tuple[Any, Any]:
    """(input ids, attention mask) of one forward pass: `seqs` right-padded to `width` (right padding keeps position
    ids right for every architecture), then filled up to `rows` rows with masked rows (one attended pad token each:
    a row attending nothing would make softmax over no keys)."""
    import torch  # late: torch only with a model

    ids = torch.full((max(rows, len(seqs)), width), pad, dtype=torch.long)
    mask = torch.zeros((max(rows, len(seqs)), width), dtype=torch.long)
    mask[len(seqs):, 0] = 1
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[row, : len(s)] = 1
    return ids, mask


def token_budget_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped into batches, longest first, each with max_len x size <= budget (at least one per batch).

    Longest-first makes an out-of-memory batch show up at the start, not after an hour.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if current and new_longest * (len(current) + 1) > budget:
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches
