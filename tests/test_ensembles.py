"""Ensembles from stored scores: the pure combination rules, and a sweep whose ensemble entries are checked against a
computation written here from the stored member scores."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_ensembles.py


@pytest.mark.slow
def test_ensembles_in_a_sweep(local_ray, rewardbench_file, tmp_path):
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 3}],
        "models": ["length", "random"],
        "ensembles": [{"name": "ens-mean", "members": ["length", "random"]},
                      {"name": "ens-unc", "members": ["length", "random"], "method": "uncertainty", "penalty": 2.0}],
    })
    result = run_sweep(spec)
    assert result.ok and set(result.stats.loads) == {"length", "random"}  # ensembles load nothing
    board = {e["model"]: e for e in json.loads((tmp_path / "out" / "leaderboard.json").read_text())}
    assert board["ens-mean"]["extra"]["ensemble"]["members"] == ["length", "random"]

    def z(model):
        rows = pq.read_table(tmp_path / "out" / "results" / model).to_pylist()
        v = np.array([r["score"] for r in rows])
        return {(r["item_id"], r["candidate"]): (s - v.mean()) / v.std() for r, s in zip(rows, v)}

    zl, zr = z("length"), z("random")
    items = pq.read_table(tmp_path / "out" / "items" / "rewardbench.parquet").to_pylist()
    for name, rule in (("ens-mean", lambda a, b: (a + b) / 2),
                       ("ens-unc", lambda a, b: (a + b) / 2 - 2.0 * abs(a - b) / 2)):
        hits = defaultdict(list)
        for it in items:
            s = [rule(zl[(it["item_id"], c)], zr[(it["item_id"], c)]) for c in (0, 1)]
            hits[it["subset"]].append(1.0 if s[0] > s[1] else 0.0)
        want = {k: sum(v) / len(v) for k, v in hits.items()}
        assert board[name]["subsets"] == pytest.approx(want, abs=1e-12)
        assert not math.isnan(board[name]["score"])
