"""What fixed-row forward passes cost (rmorch.actors.backends.text.rows_per_pass), side by side in one process.

bf16 matrix kernels on CPUs with AMX give a sequence other numbers in passes of other row counts, so every forward
pass of a width holds ROWS_PER_PASS rows (masked filler rows where a width has fewer sequences left). This scores
the same RewardBench sequences with the SmolLM2-135M classifier (bf16, seeded new head) under:

    rows-1 / rows-2 / rows-4 / rows-8   passes of that many rows (filled up), the batch-invariant ways
    budget (before)              passes of up to batch_tokens // width rows, never filled: not batch-invariant on AMX

and prints tokens/s of each, the filler share, and whether scores moved between batch sizes 1, 7 and all.

    .venv/bin/python bench/fixed_rows.py [--pairs 40] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import time

from rmorch.actors.backends import hf, text
from rmorch.actors.base import ActorContext, ScoreRequest
from rmorch.actors.classifier import Classifier, ClassifierConfig

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "rewardbench" / "filtered.jsonl"


def requests(pairs: int) -> list[ScoreRequest]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    random.Random(0).shuffle(rows)
    return [ScoreRequest(f"{r['subset']}/{r['id']}", c, [{"role": "user", "content": r["prompt"]}], t)
            for r in rows[:pairs] for c, t in enumerate((r["chosen"], r["rejected"]))]


def variant(name: str) -> None:
    """Set the batching of `name` (module settings; this is a measurement script)."""
    if name == "budget":
        text.ROWS_PER_PASS = 10**9
        hf.rows_per_pass = lambda width, budget: 0  # no filler rows: the pass holds the batch as it comes
    else:
        text.ROWS_PER_PASS = int(name.split("-")[1])
        hf.rows_per_pass = text.rows_per_pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--variants", default="rows-1,rows-2,rows-4,rows-8,budget")
    args = ap.parse_args()
    reqs = requests(args.pairs)
    model = Classifier(ClassifierConfig(path="builtin:smollm2-135m-instruct", dtype="bfloat16", max_length=1024,
                                        batch_tokens=8192), ActorContext(seed=0, threads=2), "smollm2-rm")
    backend = model.backend
    lengths = [len(backend.encode(r).ids) for r in reqs]
    tokens = sum(lengths)
    names = args.variants.split(",")
    best: dict[str, float] = {}
    moved: dict[str, float] = {}
    filler: dict[str, float] = {}
    for name in names:
        variant(name)
        rows = 0
        for width, batch in text.width_batches(lengths, 8192, None):
            rows += max(hf.rows_per_pass(width, 8192), len(batch)) * width
        filler[name] = 1 - sum(text.padded_width(n) for n in lengths) / rows
        model.score(reqs[:8])  # warm-up
    for _ in range(args.repeat):  # interleaved, so that a slower moment of the machine hits every variant alike
        for name in names:
            variant(name)
            t = time.perf_counter()
            ref = [o.score for o in model.score(reqs)]
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
            one = [model.score([r])[0].score for r in reqs[:14]]
            seven = [o.score for i in range(0, 14, 7) for o in model.score(reqs[i : i + 7])]
            moved[name] = max(abs(a - b) for got in (one, seven) for a, b in zip(ref[:14], got))
    print(f"{len(reqs)} sequences, {tokens} tokens, SmolLM2-135M classifier bf16, batch_tokens 8192, 2 threads")
    for name in names:
        print(f"{name:8s} {tokens / best[name]:7.0f} tokens/s  ({best[name]:.2f} s)  filler {filler[name]:5.1%} of "
              f"padded tokens  scores moved by up to {moved[name]:.4f} between batch sizes 1, 7 and all")
    for name in names:
        if name != "budget" and "budget" in best:
            print(f"{name} vs budget: {best['budget'] / best[name]:.2f}x the speed")


if __name__ == "__main__":
    main()
