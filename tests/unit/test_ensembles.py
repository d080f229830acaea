"""Ensembles from stored scores: the pure combination rules, and a sweep whose ensemble entries are checked against a
computation written here from the stored member scores."""

from __future__ import annotations

import numpy as np
import pytest

from rmorch.core.schema import items_table, results_table
from rmorch.orchestrator.report.ensembles import combine, ensemble_results
from rmorch.orchestrator.spec.sweep_spec import EnsembleSpec

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_ensembles.py


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
