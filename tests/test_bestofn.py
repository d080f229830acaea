"""Best-of-N in closed form (rmorch.suites.bestofn) against brute-force enumeration of every k-subset, hand-computed cases,
and the `length` baseline's gsm8k-bon curve from a real sweep against a computation straight from the data file."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_bestofn import brute_force

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_bestofn.py


def test_length_curve_on_gsm8k_bon_matches_independent_computation(tmp_path, shared_data, local_ray) -> None:
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    data = shared_data / "gsm8k"
    spec = spec_from_dict({"out": str(tmp_path / "out"), "seed": 0, "resamples": 200,
                           "suites": [{"name": "gsm8k-bon", "data": str(data)}],
                           "models": ["length", "random"]})
    run_sweep(spec)
    bon = json.loads((tmp_path / "out" / "bon.json").read_text())
    curve = next(c for c in bon if c["model"] == "length" and c["suite"] == "gsm8k-bon")

    # Independent: straight from the file, the four solutions in key order, score = characters, every k-subset.
    keys = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
    rows = [json.loads(line) for line in (data / "example_model_solutions.jsonl").read_text().splitlines()]
    sums = [0.0] * 4
    oracle = [0.0] * 4
    for r in rows:
        lengths = [float(len(r[k]["solution"])) for k in keys]
        gold = [1.0 if r[k]["is_correct"] else 0.0 for k in keys]
        for i, v in enumerate(brute_force(lengths, gold)):
            sums[i] += v
        for i, v in enumerate(brute_force(gold, gold)):
            oracle[i] += v
    assert curve["k"] == [1, 2, 3, 4]
    assert curve["n_items"] == len(rows) == 1319
    assert curve["expected"] == pytest.approx([s / len(rows) for s in sums], abs=1e-12)
    assert curve["oracle"] == pytest.approx([s / len(rows) for s in oracle], abs=1e-12)
    assert curve["random"] == pytest.approx(sums[0] / len(rows), abs=1e-12)
    assert curve["oracle"][-1] == pytest.approx(0.672, abs=0.001)  # the data README: any of four correct, 67.2 %
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    length = next(e for e in board if e["model"] == "length")
    assert length["score"] == pytest.approx(curve["expected"][-1], abs=1e-12)  # the official number is k = N
    assert (tmp_path / "out" / "plots" / "bon-gsm8k-bon.png").stat().st_size > 10_000
