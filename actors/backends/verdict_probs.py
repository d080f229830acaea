"""Probability verdicts: the judge's probabilities of its verdict labels, read in one prefill pass per request.

The judge's reply is started for it with the verdict prefix of its template (`[[` by default), and the probability
of each label ("A", "B", ..., or "1" ... "10" for ratings) as the next tokens is read from the model's distribution
at that position, over the whole vocabulary (`logprob_token_ids` in vLLM; a softmax in the reference computation).

Labels are token paths after the prefix (`label_paths`, checked to be how the tokenizer encodes prefix + label). A
label of one token needs one position; a label of several tokens ("10" is "1", "0" for most tokenizers) needs the
conditional probability of each token, so one more short request per distinct label prefix (prefix caching makes
it cheap). A label whose path is a proper prefix of another's ("1" of "10") is complete only if the next token is
not the one that continues the longer label: P(1) = P("1") * (1 - P("0" | "1")). `combine` turns the per-position
log-probabilities into the labels' probabilities, normalised over the labels, and their total `mass` before
normalising (how much of the judge's distribution the labels hold at all). Pure functions; no model here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rmorch.core.errors import UserError

Path = tuple[int, ...]

RATING_LABELS = tuple(str(k) for k in range(1, 11))


@dataclass(frozen=True)
class LabelProbs:
    """One request's probability verdict: `probs` per label (normalised over the labels), the labels' total
    probability `mass`, and whether the judge's own most likely next token starts a label (`greedy_label`); or an
    `error` for this request alone."""

    probs: list[float] | None = None
    mass: float | None = None
    greedy_label: bool | None = None
    n_prompt_tokens: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class LabelTokens:
    prefix: list[int]  # the verdict prefix's tokens (appended to the rendered prompt)
    paths: list[Path]  # per label, its tokens after the prefix

    def queries(self) -> dict[Path, list[int]]:
        """Every position whose next-token probabilities are needed: the label-path prefix read there (the empty
        path: right after the verdict prefix) -> the token ids to read, sorted."""
        need: dict[Path, set[int]] = {}
        for path in self.paths:
            for i, token in enumerate(path):
                need.setdefault(path[:i], set()).add(token)
        return {ctx: sorted(tokens) for ctx, tokens in sorted(need.items(), key=lambda kv: (len(kv[0]), kv[0]))}

    def first_tokens(self) -> set[int]:
        return {p[0] for p in self.paths}


def label_paths(tokenizer: Any, prefix: str, labels: Sequence[str], model: str) -> LabelTokens:
    """The token path of each label after `prefix`, as the tokenizer encodes `prefix + label`. A UserError where the
    tokenizer merges the prefix with a label (then the position of the label is not one place), or two labels
    encode the same."""
    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    head = ids(prefix)
    paths: list[Path] = []
    for label in labels:
        full = ids(prefix + label)
        if full[: len(head)] != head or len(full) == len(head):
            raise UserError(f"model '{model}': `verdict: logprobs`: the tokenizer does not encode the verdict "
                            f"prefix {prefix!r} followed by the label {label!r} as the prefix's tokens and then the "
                            f"label's; choose another `verdict_prefix`")
        paths.append(tuple(full[len(head):]))
    if len(set(paths)) != len(paths):
        raise UserError(f"model '{model}': `verdict: logprobs`: two labels of {list(labels)} encode alike")
    return LabelTokens(head, paths)


def combine(tokens: LabelTokens, logprobs: Mapping[Path, Mapping[int, float]]) -> tuple[list[float], float]:
    """The labels' probabilities normalised over the labels, and their total mass, from the log-probabilities read
    at each query position (`logprobs[ctx][token]`)."""
    p: list[float] = []
    for path in tokens.paths:
        prob = 1.0
        for i, token in enumerate(path):
            prob *= math.exp(logprobs[path[:i]][token])
        longer = [q[len(path)] for q in tokens.paths if len(q) > len(path) and q[: len(path)] == path]
        if longer:  # the label ends here only if no longer label goes on
            prob *= max(0.0, 1.0 - sum(math.exp(logprobs[path][t]) for t in set(longer)))
        p.append(prob)
    mass = sum(p)
    if mass <= 0.0:
        return [1.0 / len(p)] * len(p), 0.0
    return [x / mass for x in p], mass


def verdict_from_probs(probs: Sequence[float]) -> int | None:
    """The label with the highest probability, or None where two labels share it (an exact tie is no verdict)."""
    top = max(probs)
    winners = [i for i, x in enumerate(probs) if x == top]
    return winners[0] if len(winners) == 1 else None


def margin(probs: Sequence[float]) -> float:
    """The difference between the two largest probabilities (how decided the judgment is)."""
    a, b = sorted(probs, reverse=True)[:2]
    return a - b


def describe(labels: Sequence[str], probs: Sequence[float], mass: float, greedy_label: bool | None) -> str:
    """The human-readable record of a probability verdict kept as the row's raw output."""
    shown = " ".join(f"{lb}={p:.4f}" for lb, p in zip(labels, probs))
    greedy = "" if greedy_label is None else ("; greedy next token is a label" if greedy_label
                                               else "; greedy next token is no label")
    return f"logprobs: {shown} (label mass {mass:.4f}{greedy})"
