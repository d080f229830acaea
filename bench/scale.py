"""Scale and memory: a generated RewardBench-shaped suite of 1,000,000 items through the `length` baseline, end to end.

    .venv/bin/python bench/scale.py [--items 1000000] [--work DIR]

Writes DIR/items.parquet (prompt, chosen, rejected, subset, id; text lengths drawn like RewardBench's: a few hundred
characters per prompt and response), then in child processes (so each peak RSS is that process's own):
1. `rmorch sweep` (run in-process by a child: the driver) over it with the `length` baseline: seconds, items/s and
   the driver's peak RSS (ru_maxrss of the driver process only; Ray's own processes are not the driver);
2. `rmorch report OUT` over the store: seconds and peak RSS.
Prints the store's size on disk. Last line: `items_per_s=X driver_peak_rss_gib=Y report_seconds=Z`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SUBSETS = ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med",
           "mt-bench-hard", "refusals-dangerous", "refusals-offensive", "llmbar-natural", "llmbar-adver-neighbor",
           "llmbar-adver-GPTInst", "llmbar-adver-GPTOut", "llmbar-adver-manual", "xstest-should-refuse",
           "xstest-should-respond", "donotanswer", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python",
           "hep-rust", "math-prm"]
WORDS = np.array("the a model answer because that is it we so then fine works reward helpful response question "  # noqa: SIM905
                 "code math safe refuse explain step result value".split())

DRIVER = """
import json, resource, sys, time
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep
doc = json.loads(sys.argv[1])
t = time.perf_counter()
result = run_sweep(spec_from_dict(doc))
print(json.dumps({"seconds": time.perf_counter() - t, "ok": result.ok, "units": result.n_units,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

REPORT = """
import resource, sys, time
from rmorch.orchestrator.cli import main
t = time.perf_counter()
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
print("REPORT", time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)
"""


def text(rng: np.random.Generator, n: int, mean_words: float) -> list[str]:
    lengths = np.maximum(1, rng.lognormal(np.log(mean_words), 0.8, n).astype(int))
    words = WORDS[rng.integers(0, len(WORDS), int(lengths.sum()))]
    out, i = [], 0
    for k in lengths:
        out.append(" ".join(words[i : i + k]))
        i += k
    return out


def generate(path: str, n: int, seed: int = 0, chunk: int = 100_000) -> None:
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        table = pa.table({
            "id": pa.array(np.arange(start, start + m)),
            "subset": pa.array([SUBSETS[i % len(SUBSETS)] for i in range(start, start + m)]),
            "prompt": text(rng, m, 40),
            "chosen": text(rng, m, 60),
            "rejected": text(rng, m, 55),
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--work", default=None)
    ap.add_argument("--shard-size", type=int, default=20_000)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="rmorch-scale-")
    os.makedirs(work, exist_ok=True)
    data, out = os.path.join(work, "items.parquet"), os.path.join(work, "out")
    t = time.perf_counter()
    generate(data, args.items)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"generated {args.items} items in {time.perf_counter() - t:.1f} s: {os.path.getsize(data) / 2**20:.0f} MiB")
    doc = {"out": out, "shard_size": args.shard_size, "models": ["length"],
           "suites": [{"name": "big", "kind": "file", "data": data,
                       "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected",
                                   "subset": "subset", "id": "id"}}]}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(doc)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"sweep failed:\n{proc.stderr[-4000:]}")
    sweep = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = sweep["peak_rss_kib"] / 2**20
    print(f"sweep: {sweep['seconds']:.1f} s for {args.items} items ({sweep['units']} units), "
          f"{args.items / sweep['seconds']:.0f} items/s, driver peak RSS {rss:.2f} GiB")
    print(f"store: {du(out) / 2**20:.0f} MiB on disk ({out})")
    rep = subprocess.run([sys.executable, "-c", REPORT, "report", out], capture_output=True, text=True, check=False)
    line = [x for x in rep.stdout.splitlines() if x.startswith("REPORT ")]
    if not line or line[-1].split()[3] != "0":
        sys.exit(f"report failed:\n{rep.stdout[-2000:]}\n{rep.stderr[-4000:]}")
    _, seconds, kib, _ = line[-1].split()
    print(f"rmorch report: {float(seconds):.1f} s, peak RSS {int(kib) / 2**20:.2f} GiB")
    print(f"items_per_s={args.items / sweep['seconds']:.0f} driver_peak_rss_gib={rss:.2f} "
          f"report_seconds={float(seconds):.1f}")


if __name__ == "__main__":
    main()
