"""Scheduler benchmark: a simulated 45-model sweep through the real pipeline, scheduler and Ray.

45 models of kind `simulated` (bench/simulated_model.py: loads and scoring sleep; scoring in proportion to
tokens x parameters / GPUs): 30 of 1 GPU (0.5-8 B parameters), 10 of 2 GPUs with tensor parallel 2 (13-34 B) and 5
of 8 GPUs with tensor parallel 8 (70-141 B), all with `replicas: auto`, against 7 generated preference suites of
different sizes and text lengths, on 64 logical GPUs: one Ray node (`--nodes 1`, the default) or a
ray.cluster_utils.Cluster of `--nodes` nodes sharing them. The time scale is set so that the lower bound is about
`--seconds`.

    .venv/bin/python bench/scheduler.py [--nodes 1|8] [--seconds 60] [--shard-size 32] [--no-reuse] [--plan]

`--no-reuse` sets `reuse_processes: false` (every replica in a new process; by default a finished replica's process
may load the next model of its shape). `--plan` (issue 19) plans the sweep on the live cluster before running it
(rmorch.orchestrator.plan.forecast.plan_sweep, nothing measured: assumed figures), then plans it again into a fresh
store calibrated from the first run's measured rates and runs it there too; it prints each plan's makespan beside
the run's (`run_sweep` from call to return; the scheduling part: first replica requested -> last released).

Lower bound = max((GPU-seconds of all units + one load per model x its GPUs) / GPUs, the longest unit plus its
model's load). Prints makespan, lower bound, GPU idle, loads; the last line is `makespan_ratio=X`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)

import ray

import bench.simulated_model  # noqa: F401  (registers the kind)
from rmorch.orchestrator.plan.forecast import connected_cluster, plan_sweep
from rmorch.orchestrator.plan.units import load_suite, make_units
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

GPUS = 64
SUITES = {  # name -> (items, mean characters per response)
    "chat": (256, 1200), "code": (192, 2400), "math": (160, 800), "safety": (128, 3000),
    "reasoning": (96, 1600), "long": (64, 4000), "multilingual": (64, 600),
}
SMALL = [0.5, 1, 1.5, 2, 3, 4, 7, 8]  # B parameters, cycled over the 30 one-GPU models
MEDIUM = [13, 14, 20, 22, 27, 30, 32, 33, 34, 34]  # tensor parallel 2
LARGE = [70, 72, 110, 123, 141]  # tensor parallel 8


def write_suites(root: Path, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    suites = []
    for name, (n, chars) in SUITES.items():
        path = root / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for i in range(n):
                prompt = "q" * int(chars * rng.uniform(0.1, 0.5))
                chosen, rejected = ("a" * int(chars * rng.uniform(0.3, 1.7)) for _ in range(2))
                f.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
        suites.append({"name": name, "kind": "file", "data": str(path),
                       "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}})
    return suites


def model_entries(seconds_per_token_b: float) -> list[dict]:
    sizes = [(p, 1) for p in (SMALL * 4)[:30]] + [(p, 2) for p in MEDIUM] + [(p, 8) for p in LARGE]
    return [{"name": f"sim-{tp}gpu-{i:02d}-{p:g}b", "kind": "simulated", "size_b": float(p),
             "tensor_parallel_size": tp, "load_seconds": round(1.0 + p / 100, 3),
             "seconds_per_token_b": seconds_per_token_b, "num_cpus": 0.25, "replicas": "auto"}
            for i, (p, tp) in enumerate(sizes)]


def lower_bound(spec) -> tuple[float, float, float]:
    """(area bound, longest unit + load, GPU-seconds of the units) from the plan, in simulated seconds."""
    units = make_units(spec, [load_suite(s, spec.seed) for s in spec.suites])
    conf = {m.name: m.config for m in spec.models}
    unit_gpu_seconds, longest = 0.0, 0.0
    for u in units:
        c = conf[u.model]
        secs = u.tokens * c.size_b / c.tensor_parallel_size * c.seconds_per_token_b
        unit_gpu_seconds += secs * c.tensor_parallel_size
        longest = max(longest, c.load_seconds + secs)
    loads = sum(c.load_seconds * c.tensor_parallel_size for c in conf.values())
    return (unit_gpu_seconds + loads) / GPUS, longest, unit_gpu_seconds


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far (user + system of every process), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        user, nice, system = (int(x) for x in f.readline().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def start_ray(nodes: int):
    if nodes <= 1:
        # address="local": always a new instance, never a cluster another process on this machine started
        ray.init(address="local", num_cpus=16, num_gpus=GPUS, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
        return None
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0})
    for _ in range(nodes):
        cluster.add_node(num_cpus=4, num_gpus=GPUS // nodes)
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    cluster.wait_for_nodes()
    return cluster


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60.0, help="target lower bound, simulated seconds")
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--no-reuse", action="store_true", help="reuse_processes: false (a new process per replica)")
    ap.add_argument("--plan", action="store_true",
                    help="plan before running (assumed), then plan calibrated from the run and run again")
    ap.add_argument("--keep", help="keep the suites and the result store in this directory (default: a temp dir)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        Path(tmp).mkdir(parents=True, exist_ok=True)
        suites = write_suites(Path(tmp))
        doc = {"seed": 0, "out": str(Path(tmp) / "out"), "shard_size": args.shard_size, "resamples": 0,
               "suites": suites, "models": model_entries(1.0), "reuse_processes": not args.no_reuse}
        area, _, unit_gpu_seconds = lower_bound(spec_from_dict(doc))
        scale = args.seconds * GPUS / unit_gpu_seconds  # seconds per token x B so the units fill `seconds`
        doc["models"] = model_entries(scale)
        spec = spec_from_dict(doc)
        area, longest_unit, unit_gpu_seconds = lower_bound(spec)
        bound = max(area, longest_unit)

        t = time.perf_counter()
        cluster = start_ray(args.nodes)
        ray_start = time.perf_counter() - t
        plans = []
        try:
            if args.plan:
                shape = connected_cluster(f"{args.nodes} node(s)")
                plans.append(("assumed", plan_sweep(spec, shape, calibrate_from=[])))
            result, last, driver_cpu, machine_cpu = run_once(spec)
            runs = [(result, last)]
            if args.plan:
                again = dataclasses.replace(spec, out=str(Path(tmp) / "out-calibrated"))
                plans.append(("calibrated", plan_sweep(again, shape, calibrate_from=[spec.out])))
                runs.append(run_once(again)[:2])
        finally:
            ray.shutdown()
            if cluster is not None:
                cluster.shutdown()

    print(f"cluster: {args.nodes} node(s), {GPUS} logical GPUs; Ray start {ray_start:.1f} s")
    print(f"plan: {len(spec.models)} models x {len(spec.suites)} suites = {result.n_units} units "
          f"(shard_size {args.shard_size}); unit GPU-seconds {unit_gpu_seconds:.0f}")
    describe(spec, result, last)
    print(f"CPU during run_sweep: driver {driver_cpu:.0f} s, whole machine {machine_cpu:.0f} s of "
          f"{result.seconds * os.cpu_count():.0f} s available")
    print(f"lower bound {bound:.1f} s (area {area:.1f} s, longest unit + load {longest_unit:.1f} s); "
          f"makespan {last['makespan_seconds']:.1f} s")
    for (source, plan), (res, rec) in zip(plans, runs):
        print("plan_vs_measured=" + json.dumps({
            "estimate": source, "makespan_s": round(plan.makespan_s, 1), "measured_s": round(res.seconds, 1),
            "error": round(plan.makespan_s / res.seconds - 1, 3), "schedule_s": round(plan.schedule_s, 1),
            "measured_schedule_s": round(rec["makespan_seconds"], 1),
            "schedule_error": round(plan.schedule_s / rec["makespan_seconds"] - 1, 3),
            "lower_bound_s": round(plan.lower_bound_s, 1), "gpu_hours": round(plan.gpu_hours, 3),
            "measured_gpu_hours": round(rec["gpu_seconds"]["held"] / 3600, 3),
            "critical_path": (plan.critical_path or {}).get("model")}))
    print(f"makespan_ratio={last['makespan_seconds'] / bound:.3f}")


def run_once(spec) -> tuple[Any, dict, float, float]:
    """run_sweep(spec) on the connected cluster: its result, run.json's last_run, and the CPU seconds of the driver
    and of the whole machine during it."""
    cpu0, machine0 = time.process_time(), machine_cpu_seconds()
    result = run_sweep(spec)
    driver_cpu, machine_cpu = time.process_time() - cpu0, machine_cpu_seconds() - machine0
    last = json.loads((Path(spec.out) / "run.json").read_text())["last_run"]
    assert result.ok and last["units_computed"] == result.n_units, result.stats.failed_models
    return result, last, driver_cpu, machine_cpu


def describe(spec, result, last: dict) -> None:
    loads = last["loads"]
    gs = last["gpu_seconds"]
    load_of = {m.name: m.config.load_seconds for m in spec.models}
    overhead = [r["ready_at"] - r["requested_at"] - load_of[r["model"]] for r in last["replicas"]]
    print(f"loads: {sum(loads.values())} for {len(loads)} models (max {max(loads.values())} for one model); "
          f"replica start overhead beyond the simulated load: mean {sum(overhead) / len(overhead):.2f} s, "
          f"max {max(overhead):.2f} s")
    print(f"replica processes started: {last['processes_started']}; replicas loaded in a reused process: "
          f"{last['reloads']}")
    print(f"GPU-seconds: total {gs['total']:.0f}, working {gs['working']:.0f}, loading {gs['loading']:.0f}, "
          f"held {gs['held']:.0f}")
    print(f"GPU idle: {last['gpu_idle_fraction']:.3f}")
    walls = last["model_wall_seconds"]
    longest = sorted(walls.items(), key=lambda x: -x[1])[:5]
    print("longest model wall seconds: " + ", ".join(f"{m} {s:.1f}" for m, s in longest))
    print(f"whole run_sweep {result.seconds:.1f} s (suites, plan, store, report included)")


if __name__ == "__main__":
    main()
