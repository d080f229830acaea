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
