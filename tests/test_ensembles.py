"""Ensembles from stored scores: the pure combination rules, and a sweep whose ensemble entries are checked against a
computation written here from the stored member scores."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.report.ensembles import combine, ensemble_results
from rmorch.orchestrator.spec.sweep_spec import EnsembleSpec
from rmorch.core.schema import items_table, results_table
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep


def _rows(model, scores, error_at=None):
    return results_table([
        {"unit_key": "u", "model": model, "suite": "s", "subset": "x", "item_id": f"i{k // 2}", "candidate": k % 2,
         "score": None if k == error_at else v, "error": "boom" if k == error_at else None, "settings_hash": "h"}
        for k, v in enumerate(scores)
    ])


def test_combination_rules():
    assert combine([1.0, 3.0], "mean", 1.0) == 2.0
    assert combine([1.0, 3.0], "min", 1.0) == 1.0
    assert combine([1.0, 3.0], "uncertainty", 0.5) == pytest.approx(2.0 - 0.5 * 1.0)


def test_members_are_standardised_and_gaps_become_errors():
    items = items_table([{"suite": "s", "subset": "x", "item_id": f"i{k}", "prompt": [{"role": "user", "content": "q"}],
                          "candidates": ["a", "b"], "correct": [0]} for k in range(2)])
    a = _rows("a", [1.0, 2.0, 3.0, 4.0])  # z: -1.342, -0.447, 0.447, 1.342
    b = _rows("b", [400.0, 100.0, 300.0, 200.0], error_at=3)  # a different scale; one error
    out = ensemble_results(EnsembleSpec("e", ("a", "b")), items, {"a": a, "b": b}, "s").to_pylist()
    za = (np.array([1, 2, 3, 4.0]) - 2.5) / np.std([1, 2, 3, 4.0])
    zb = (np.array([400, 100, 300.0]) - np.mean([400, 100, 300.0])) / np.std([400, 100, 300.0])
    for k in range(3):
        assert out[k]["score"] == pytest.approx((za[k] + zb[k]) / 2)
        assert out[k]["scores"] == pytest.approx([za[k], zb[k]])
    assert out[3]["score"] is None and "b" in out[3]["error"]
    assert all(r["model"] == "e" and r["backend"] == "ensemble" for r in out)


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
