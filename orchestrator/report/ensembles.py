"""Ensembles of reward models, computed from stored scores: no model runs again.

Spec (top level):

    ensembles:
      - name: rm-ensemble
        members: [rm-a, rm-b, rm-c]      # models of the sweep with pointwise scores (RMs, implicit, baselines)
        method: mean                     # mean | min | uncertainty
        penalty: 1.0                     # uncertainty: mean - penalty * std across members

Members score on different scales, so each member's scores are first standardised per suite (z = (s - mean) / std
over all its valid candidate scores in that suite). Then per (item, candidate): `mean` of the z-scores, `min` (the
most pessimistic member), or `uncertainty` = mean - penalty * (population) std across members, which ranks down
candidates the members disagree on. A candidate that any member lacks (error, missing) gets an error row, which the
official rules count as wrong. The ensemble's rows are ordinary result rows (backend "ensemble"), scored by the
suite like any model's; they are computed at report time and never stored as units.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rmorch.core.schema import candidate_counts, results_table
from rmorch.orchestrator.spec.sweep_spec import EnsembleSpec


def standardised(results: pa.Table) -> dict[tuple[str, int], float]:
    """(item_id, candidate) -> z-score of one member's valid pointwise scores (NaN where errored or missing)."""
    rows = results.filter(pc.is_valid(results.column("candidate")))
    keys = list(zip(rows.column("item_id").to_pylist(), rows.column("candidate").to_pylist()))
    raw = [s if (s is not None and e is None) else math.nan
           for s, e in zip(rows.column("score").to_pylist(), rows.column("error").to_pylist())]
    arr = np.asarray(raw, dtype=np.float64)
    valid = arr[~np.isnan(arr)]
    mean = float(valid.mean()) if valid.size else 0.0
    std = float(valid.std()) if valid.size else 0.0
    z = (arr - mean) / (std if std > 0 else 1.0)
    return dict(zip(keys, z.tolist()))


def combine(values: list[float], method: str, penalty: float) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if method == "mean":
        return float(arr.mean())
    if method == "min":
        return float(arr.min())
    return float(arr.mean() - penalty * arr.std())


def ensemble_results(spec: EnsembleSpec, items: pa.Table, members: dict[str, pa.Table], suite: str) -> pa.Table:
    """The ensemble's result rows for one suite, from its members' result rows (pure)."""
    zs = {m: standardised(members[m]) for m in spec.members}
    rows = []
    settings_hash = f"ensemble:{spec.method}:{spec.penalty}:" + ",".join(spec.members)
    for item, n in zip(items.select(["subset", "item_id"]).to_pylist(), candidate_counts(items)):
        for c in range(n):
            values = [zs[m].get((item["item_id"], c), math.nan) for m in spec.members]
            lacking = [m for m, v in zip(spec.members, values) if math.isnan(v)]
            row = {"unit_key": f"ensemble:{spec.name}", "model": spec.name, "suite": suite, "subset": item["subset"],
                   "item_id": item["item_id"], "candidate": c, "settings_hash": settings_hash, "backend": "ensemble",
                   "scores": values}
            if lacking:
                row["error"] = f"no score from member(s) {', '.join(lacking)}"
                row["scores"] = None
            else:
                row["score"] = combine(values, spec.method, spec.penalty)
            rows.append(row)
    return results_table(rows)
