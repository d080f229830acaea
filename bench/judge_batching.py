"""Generative judge throughput: rmorch's one batched `generate` per shard against one request at a time (the way
per-item judge scripts call an engine), same engine, same prompts, same greedy outputs, in one run.

    .venv/bin/python bench/judge_batching.py [--pairs 24] [--max-tokens 32]

SmolLM2-135M-Instruct (builtin) as a pairwise judge on a seeded RewardBench sample, both orders of every pair.
Last line: `batched_seconds=X sequential_seconds=Y ratio=Y/X engine_start_seconds=Z`.
"""

from __future__ import annotations

import argparse
import platform
import time

from rmorch.actors.base import ActorContext
from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.actors.worker import ShardTask, shard_requests
from rmorch.suites import get_suite_class


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/rewardbench")
    ap.add_argument("--pairs", type=int, default=24)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    args = ap.parse_args()

    suite = get_suite_class("rewardbench")()
    items = suite.sample(suite.load(args.data), 2, seed=0).slice(0, args.pairs)
    judge_cfg = JudgeConfig(path="builtin:smollm2-135m-instruct", max_tokens=args.max_tokens, max_model_len=4096,
                            dtype=args.dtype)
    presentation = Judge.presentation(judge_cfg)
    reqs = []
    for p in range(2):
        reqs += shard_requests(items, presentation, ShardTask("k", "j", "rewardbench", 0, items.num_rows, p))

    t = time.perf_counter()
    judge = Judge(judge_cfg, ActorContext(seed=0, threads=2), "smollm2-judge")
    start = time.perf_counter() - t
    judge.score(reqs[:2])  # warm-up, outside both timings

    t = time.perf_counter()
    batched = judge.score(reqs)
    batched_s = time.perf_counter() - t
    t = time.perf_counter()
    sequential = [judge.score([r])[0] for r in reqs]
    sequential_s = time.perf_counter() - t
    dtype = judge.settings().dtype
    judge.close()

    same = sum(a.raw_output == b.raw_output for a, b in zip(batched, sequential))
    prompt_tokens = sum(o.n_tokens or 0 for o in batched)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.platform()}")
    print(f"{len(reqs)} judgments ({args.pairs} pairs x 2 orders), {prompt_tokens} prompt tokens, "
          f"max_tokens {args.max_tokens}, {dtype}; identical outputs batched vs sequential: {same}/{len(reqs)}")
    print(f"batched_seconds={batched_s:.2f} sequential_seconds={sequential_s:.2f} "
          f"ratio={sequential_s / batched_s:.2f} engine_start_seconds={start:.1f}")


if __name__ == "__main__":
    main()
