"""Sequence-classifier RMs through real transformers: tokenisation policy, batching, and a sweep on local Ray."""

from __future__ import annotations

import pytest

from rmorch.actors.backends.text import encode, token_budget_batches
from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.classifier import Classifier, ClassifierConfig
from rmorch.actors.worker import ModelWorker, ShardTask
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.suites import get_suite_class

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_classifier.py


def _reqs(n: int) -> list[ScoreRequest]:
    texts = ["short answer", "a somewhat longer answer about the sea and the sky " * 3, "x", "the end"]
    return [
        ScoreRequest(f"i{k}", k % 2, [{"role": "user", "content": f"question {k}?"}], texts[k % len(texts)] * (1 + k % 5))
        for k in range(n)
    ]


@pytest.fixture(scope="module")
def classifier(tiny_classifier):
    cfg = ClassifierConfig(path=tiny_classifier, dtype="float32", max_length=256, batch_tokens=1024)
    return Classifier(cfg, ActorContext(seed=0, threads=1), "tiny")


def test_token_budget_batches_respect_budget_and_cover_all():
    lengths = [5, 100, 7, 64, 64, 3, 250, 1]
    batches = token_budget_batches(lengths, 256)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or max(lengths[i] for i in b) * len(b) <= 256
    assert batches[0] == [6]  # longest first


def test_scores_do_not_depend_on_batch_composition(classifier, tiny_classifier):
    reqs = _reqs(24)
    together = [o.score for o in classifier.score(reqs)]
    alone = [classifier.score([r])[0].score for r in reqs]
    shuffled_order = list(reversed(range(len(reqs))))
    shuffled = classifier.score([reqs[i] for i in shuffled_order])
    assert together == pytest.approx(alone, abs=1e-4)
    assert [shuffled[shuffled_order.index(i)].score for i in range(len(reqs))] == pytest.approx(together, abs=1e-4)
    assert len(set(round(s, 5) for s in together)) > 3  # noqa: C401  (a real model, not a constant)


def test_sequence_ending_in_pad_token_is_pooled_at_its_last_token(classifier):
    pad = classifier.backend.default_pad
    ids = classifier.backend.encode(_reqs(1)[0]).ids + [pad]
    other = classifier.backend.encode(_reqs(3)[2]).ids
    with_pad_last = classifier.backend.forward_ids([ids])[0]
    batched = classifier.backend.forward_ids([ids, other])[0]
    assert batched == pytest.approx(with_pad_last, abs=1e-4)


def test_truncation_is_recorded_and_keeps_bos(classifier):
    long = ScoreRequest("long", 0, [{"role": "user", "content": "q"}], "word " * 2000)
    out = classifier.score([long])[0]
    assert out.truncated is True and out.n_tokens == 256
    s = classifier.settings()
    assert (s.backend, s.dtype, s.max_length, s.truncation_side, s.chat_template) == (
        "transformers", "float32", 256, "left", "tokenizer")


def test_duplicate_bos_guard(classifier):
    tok = classifier.backend.tokenizer
    assert tok.bos_token is not None  # the tiny tokenizer has one (<|im_start|>, as SmolLM2)
    text = tok.bos_token + tok.bos_token + "hello"
    ids = encode(tok, text, 100, "left").ids
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id


def test_poison_item_becomes_one_error_row(tiny_classifier, rewardbench_file):
    """An item that makes the model raise is isolated by bisection; the rest of the shard scores."""
    spec = spec_from_dict({"suites": ["rewardbench"], "models": [
        {"name": "tiny", "kind": "classifier", "path": tiny_classifier, "dtype": "float32", "max_length": 512,
         "batch_tokens": 2048}]}).models[0]
    worker = ModelWorker(spec, seed=0)
    items = get_suite_class("rewardbench")().load(str(rewardbench_file.parent))
    items = get_suite_class("rewardbench")().sample(items, 1, seed=0).slice(0, 6)
    original = worker.model.backend.encode

    def poisoned(r):
        if r.item_id == items.column("item_id")[3].as_py() and r.candidate == 1:
            raise ValueError("poison")
        return original(r)

    worker.model.backend.encode = poisoned
    result = worker.score_shard(ShardTask("k", "tiny", "rewardbench", 0, 6), items)
    rows = result.table.to_pylist()
    assert len(rows) == 12 and result.n_errors == 1
    bad = [r for r in rows if r["error"]]
    assert bad[0]["item_id"] == items.column("item_id")[3].as_py() and "poison" in bad[0]["error"]
    assert all(r["score"] is not None for r in rows if not r["error"])
