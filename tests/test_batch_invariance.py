"""Scores do not depend on batch size or order (transformers backends): the same requests scored 1, 7 or 64 at a
time, in the data's order and shuffled, give the same numbers.

Documented tolerance: 1e-6 (in practice bit-identical): every sequence is padded to a width that depends on its own
length only (rmorch.actors.backends.text.padded_width), and batches hold one width. Without that, SmolLM2-135M in bf16
moved by up to 0.049 logit between batch sizes on these very requests (measured; see README "Throughput").
"""

from __future__ import annotations

import json
import random

import pytest

from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.backends.text import padded_width, width_batches

TOLERANCE = 1e-6


def _requests(rewardbench_file, pairs: int = 12) -> list[ScoreRequest]:
    rows = [json.loads(line) for line in rewardbench_file.read_text().splitlines()]
    random.Random(0).shuffle(rows)
    return [ScoreRequest(f"{r['subset']}/{r['id']}", c, [{"role": "user", "content": r["prompt"]}], text)
            for r in rows[:pairs] for c, text in enumerate((r["chosen"], r["rejected"]))]


def _score_in_chunks(model, reqs: list[ScoreRequest], size: int, shuffle: bool) -> dict[tuple[str, int], float]:
    order = list(range(len(reqs)))
    if shuffle:
        random.Random(size).shuffle(order)
    out = {}
    for i in range(0, len(order), size):
        chunk = [reqs[j] for j in order[i : i + size]]
        for r, o in zip(chunk, model.score(chunk)):
            assert o.error is None
            out[(r.item_id, r.candidate)] = o.score
    return out


def _assert_invariant(model, reqs):
    ref = _score_in_chunks(model, reqs, 64, shuffle=False)
    assert len(set(ref.values())) > len(reqs) // 2  # real, varied scores
    for size, shuffle in ((1, False), (7, False), (7, True), (64, True)):
        got = _score_in_chunks(model, reqs, size, shuffle)
        worst = max(abs(got[k] - ref[k]) for k in ref)
        assert worst <= TOLERANCE, f"batch size {size}, shuffled {shuffle}: scores moved by {worst}"


def test_padded_width_depends_on_the_length_alone():
    assert [padded_width(n) for n in (1, 15, 16, 17, 31, 32)] == [16, 16, 32, 32, 32, 48]
    assert padded_width(510, limit=512) == 512 and padded_width(512, limit=512) == 512
    batches = width_batches([5, 40, 33, 47, 3, 100], budget=100)
    assert batches == [(112, [5]), (48, [1, 2, 3]), (16, [0, 4])] or batches == [(112, [5]), (48, [1, 2]), (48, [3]),
                                                                                  (16, [0, 4])]
    assert sorted(i for _, b in batches for i in b) == list(range(6))
    assert all(w * len(b) <= 100 or len(b) == 1 for w, b in batches)


@pytest.mark.slow
def test_smollm2_bf16_classifier_scores_do_not_depend_on_batching(rewardbench_file):
    from rmorch.actors.classifier import Classifier, ClassifierConfig

    model = Classifier(ClassifierConfig(path="builtin:smollm2-135m-instruct", dtype="bfloat16", max_length=512,
                                        batch_tokens=32768), ActorContext(seed=0, threads=2), "smollm2-rm")
    assert model.settings().dtype == "bfloat16"
    _assert_invariant(model, _requests(rewardbench_file))


@pytest.mark.slow
def test_implicit_reward_scores_do_not_depend_on_batching(rewardbench_file):
    from rmorch.actors.implicit import Implicit, ImplicitConfig

    model = Implicit(ImplicitConfig(path="builtin:smollm2-135m-instruct", mode="avg", dtype="bfloat16", max_length=512,
                                    batch_tokens=32768), ActorContext(seed=0, threads=2), "smollm2-implicit")
    _assert_invariant(model, _requests(rewardbench_file, pairs=8))
