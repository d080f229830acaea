"""Orchestration overhead: the `length` baseline over the full RewardBench through the whole pipeline (local Ray,
plan, store, report) against the pure scoring time of the same requests in this process.

    .venv/bin/python bench/pipeline_overhead.py [--data ../shared/data/rewardbench] [--shard-size 256]

Last line: `pipeline_seconds=X scoring_seconds=Y ray_start_seconds=Z`.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import ray

from rmorch.actors.base import ActorContext
from rmorch.actors.baselines import Length
from rmorch.actors.worker import shard_requests
from rmorch.orchestrator.plan.units import load_suite
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/rewardbench")
    ap.add_argument("--shard-size", type=int, default=256)
    args = ap.parse_args()
    doc = {"shard_size": args.shard_size, "suites": [{"name": "rewardbench", "data": args.data}], "models": ["length"]}

    spec = spec_from_dict(doc)
    items = load_suite(spec.suites[0], spec.seed).items
    t = time.perf_counter()
    reqs = shard_requests(items)
    Length(None, ActorContext(), "length").score(reqs)
    scoring = time.perf_counter() - t

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray_start = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        result = run_sweep(spec_from_dict({**doc, "out": out}))
        pipeline = time.perf_counter() - t
    ray.shutdown()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}")
    print(f"items={items.num_rows} requests={len(reqs)} units={result.n_units} shard_size={args.shard_size}")
    print(f"pipeline (load suite, plan, actors, store, report): {pipeline:.2f} s; pure scoring: {scoring:.4f} s; "
          f"ray start: {ray_start:.2f} s")
    print(f"pipeline_seconds={pipeline:.3f} scoring_seconds={scoring:.4f} ray_start_seconds={ray_start:.2f}")


if __name__ == "__main__":
    main()
