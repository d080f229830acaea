"""Probability verdicts, the pure part (rmorch.actors.backends.verdict_probs): label token paths, the chain rule for
labels of several tokens, labels that are prefixes of others (1 of 10), normalisation and ties."""

from __future__ import annotations

import math

import pytest

from rmorch.actors.backends.verdict_probs import (
    RATING_LABELS,
    LabelTokens,
    combine,
    describe,
    label_paths,
    margin,
    verdict_from_probs,
)
from rmorch.core.errors import UserError
from tests.tiny_models import build_tiny_tokenizer


class CharTokenizer:
    """One token per character (ids = code points), like the digit-splitting tokenizers of SmolLM2 and Qwen."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [ord(c) for c in text]}


def test_label_paths_of_a_character_tokenizer_and_the_queries_they_need():
    tokens = label_paths(CharTokenizer(), "[[", RATING_LABELS, "j")
    assert tokens.prefix == [ord("["), ord("[")]
    assert tokens.paths[0] == (ord("1"),) and tokens.paths[9] == (ord("1"), ord("0"))
    queries = tokens.queries()
    assert list(queries) == [(), (ord("1"),)]  # one position after the prefix, one after "1"
    assert queries[()] == sorted(ord(str(k)) for k in range(1, 10)) and queries[(ord("1"),)] == [ord("0")]


def test_label_paths_of_a_real_trained_tokenizer(tmp_path):
    tok = build_tiny_tokenizer(tmp_path)
    tokens = label_paths(tok, "[[", ["A", "B"], "j")
    assert len(tokens.paths) == 2 and tokens.paths[0] != tokens.paths[1]
    for label, path in zip("AB", tokens.paths):
        assert tok("[[" + label, add_special_tokens=False)["input_ids"] == tokens.prefix + list(path)


def test_a_prefix_the_tokenizer_merges_with_the_label_is_refused():
    class Merging(CharTokenizer):
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [999] if text == "[[A" else super().__call__(text)["input_ids"]}

    with pytest.raises(UserError, match="verdict_prefix"):
        label_paths(Merging(), "[[", ["A", "B"], "j")


def test_combine_single_token_labels_normalises_over_the_labels_and_reports_the_mass():
    tokens = LabelTokens([1], [(10,), (11,)])
    probs, mass = combine(tokens, {(): {10: math.log(0.6), 11: math.log(0.2)}})
    assert probs == pytest.approx([0.75, 0.25]) and mass == pytest.approx(0.8)


def test_combine_splits_a_label_that_prefixes_another():
    one, zero, two = 49, 48, 50
    tokens = LabelTokens([], [(one,), (two,), (one, zero)])  # "1", "2", "10"
    logprobs = {(): {one: math.log(0.5), two: math.log(0.5)}, (one,): {zero: math.log(0.4)}}
    probs, mass = combine(tokens, logprobs)
    # P(1) = 0.5 * (1 - 0.4) = 0.3; P(10) = 0.5 * 0.4 = 0.2; P(2) = 0.5
    assert mass == pytest.approx(1.0) and probs == pytest.approx([0.3, 0.5, 0.2])


def test_zero_mass_gives_uniform_probabilities_and_mass_zero():
    tokens = LabelTokens([], [(1,), (2,)])
    probs, mass = combine(tokens, {(): {1: -math.inf, 2: -math.inf}})
    assert probs == [0.5, 0.5] and mass == 0.0


def test_verdict_margin_and_description():
    assert verdict_from_probs([0.2, 0.8]) == 1
    assert verdict_from_probs([0.5, 0.5]) is None  # an exact tie is no verdict
    assert margin([0.1, 0.7, 0.2]) == pytest.approx(0.5)
    text = describe(["A", "B"], [0.25, 0.75], 0.9, True)
    assert "A=0.2500" in text and "B=0.7500" in text and "label mass 0.9000" in text
