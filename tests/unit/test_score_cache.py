"""Nothing is scored twice: identical requests (same settings, seed and content) across suites, units and reruns
are computed once and reused (rmorch.orchestrator.plan.score_cache, rmorch.actors.worker), on a real tiny classifier and real Ray."""

from __future__ import annotations

from rmorch.actors import get_kind
from rmorch.actors.base import CompareRequest, ScoreRequest, content_key

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_score_cache.py


def test_content_key_is_what_the_model_is_shown():
    a = ScoreRequest("x", 0, [{"role": "user", "content": "hi"}], "hello")
    b = ScoreRequest("y", 1, [{"role": "user", "content": "hi"}], "hello")
    assert content_key(a) == content_key(b)
    assert content_key(a) != content_key(ScoreRequest("x", 0, [{"role": "user", "content": "hi"}], "hello!"))
    assert content_key(a) != content_key(ScoreRequest("x", 0, [{"role": "user", "content": "hi"}], "hello",
                                                      [{"kind": "document", "content": "d"}]))
    assert content_key(a, identity=True) != content_key(b, identity=True)
    ab = CompareRequest("x", (0, 1), 0, [], ("p", "q"))
    assert content_key(ab) != content_key(CompareRequest("x", (1, 0), 1, [], ("q", "p")))
    assert content_key(ab) == content_key(CompareRequest("z", (1, 0), 1, [], ("p", "q")))


def test_which_kinds_are_cached():
    from rmorch.actors.judge import JudgeConfig

    r = CompareRequest("x", (0, 1), 0, [], ("p", "q"))
    assert get_kind("length").cache_key(None, ScoreRequest("x", 0, [], "p")) is None
    assert get_kind("random").cache_key(None, ScoreRequest("x", 0, [], "p")) is None
    judge = get_kind("judge")
    assert judge.cache_key(JudgeConfig(path="m"), r) == content_key(r)
    assert judge.cache_key(JudgeConfig(path="m", temperature=0.7), r) == content_key(r, identity=True)


def test_rows_of_another_identity_are_never_reused():
    """The cache keeps the rows of the model's identity in this sweep (rmorch.orchestrator.plan.provenance): same
    settings, same seed, same content, but another template, model file, kind version or library: not reused."""
    from rmorch.core.model_spec import ModelSpec
    from rmorch.core.schema import results_table
    from rmorch.orchestrator.plan.score_cache import ScoreCache
    from rmorch.orchestrator.spec.parse import spec_from_dict

    model: ModelSpec = spec_from_dict({"suites": ["rewardbench"], "models": [
        {"name": "rm", "kind": "classifier", "path": "org/rm"}]}).models[0]
    row = {"unit_key": "u", "model": "rm", "suite": "s", "subset": "x", "item_id": "i", "candidate": 0, "score": 1.0,
           "settings_hash": model.settings_hash, "seed": 0, "backend": "transformers"}
    table = results_table([{**row, "identity": "old", "content_key": "k1"},
                           {**row, "identity": "new", "content_key": "k2"},
                           {**row, "identity": None, "content_key": "k3"}])  # an rmorch before identities
    cache = ScoreCache(seed=0)
    cache.add(model, table, "new")
    assert set(cache.known["rm"]) == {"k2"}
    cache = ScoreCache(seed=0)
    cache.add(model, table, None)
    assert cache.known == {}
