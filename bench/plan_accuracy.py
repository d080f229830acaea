"""Estimated vs measured makespan of `rmorch sweep` (issue 19): plan a spec into a fresh store, run the sweep
and time it end to end (the command's wall time), then plan the same spec again into another fresh store calibrated
from the first run (`--calibrate-from`), and print both estimates beside the measurement.

    .venv/bin/python bench/plan_accuracy.py SPEC [--work DIR] [--plan-args "--gpus 0"] [--sweep-args "--num-gpus 0"]

A second run of the sweep (into the calibration-only store) measures the calibrated estimate's error; without
`--rerun` the calibrated plan is printed next to the first run only. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RMORCH = str(Path(sys.executable).parent / "rmorch")


def plan(spec: str, out: str, extra: list[str], calibrate: str | None = None) -> dict:
    args = [RMORCH, "plan", spec, "--out", out, "--json", *extra]
    if calibrate:
        args += ["--calibrate-from", calibrate]
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def sweep(spec: str, out: str, extra: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([RMORCH, "sweep", spec, "--out", out, "--quiet", *extra], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("--work", default=None, help="where the stores go (default: a new temporary directory)")
    ap.add_argument("--plan-args", default="--gpus 0")
    ap.add_argument("--sweep-args", default="")
    ap.add_argument("--rerun", action="store_true", help="run the sweep again to check the calibrated estimate")
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="plan-accuracy-"))
    plan_args, sweep_args = shlex.split(a.plan_args), shlex.split(a.sweep_args)
    first, second = str(work / "first"), str(work / "second")
    assumed = plan(a.spec, first, plan_args, calibrate=str(work / "nothing"))
    measured_first = sweep(a.spec, first, sweep_args)
    calibrated = plan(a.spec, second, plan_args, calibrate=first)
    out = {"spec": a.spec, "cluster": assumed["cluster"],
           "assumed": {"makespan_s": assumed["makespan_s"], "lower_bound_s": assumed["lower_bound_s"]},
           "measured_first_s": measured_first,
           "calibrated": {"makespan_s": calibrated["makespan_s"], "lower_bound_s": calibrated["lower_bound_s"]},
           "assumed_error": assumed["makespan_s"] / measured_first - 1}
    if a.rerun:
        measured_second = sweep(a.spec, second, sweep_args)
        out["measured_second_s"] = measured_second
        out["calibrated_error"] = calibrated["makespan_s"] / measured_second - 1
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
