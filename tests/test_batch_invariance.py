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

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_batch_invariance.py

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
