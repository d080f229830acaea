"""RM-Bench: loader on the real domain files, the official 3x3 hard/normal/easy metric on hand-computed cases, and
one sweep with `length` checked against an independent computation of the official rules."""

from __future__ import annotations

import json

import pytest

import rmorch.suites.rmbench  # noqa: F401  (registers the suite)
from tests.unit import test_rmbench as fast
from tests.unit.test_rmbench import COUNTS

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_rmbench.py
rb_dir = fast.rb_dir  # a fixture shared with the fast tier


# ---- through the real pipeline -----------------------------------------------------------------------------


@pytest.mark.slow
def test_length_baseline_through_the_pipeline(local_ray, rb_dir, tmp_path) -> None:
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rm-bench", "data": str(rb_dir)}],
        "models": ["length"],
    })
    assert run_sweep(spec).ok
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    length = next(e for e in board if e["model"] == "length" and e["suite"] == "rm-bench")
    assert length["n_items"] == sum(COUNTS.values()) and length["n_errors"] == 0

    # Independent, from the README of RM-Bench and the raw files: per official domain (safety-* pooled) a 3x3
    # matrix of len(chosen[i]) > len(rejected[j]); hard = upper triangle, normal = diagonal, easy = lower.
    pooled: dict[str, list[dict]] = {}
    for f in sorted(rb_dir.glob("*_filtered.json")):
        domain = f.name.split("_")[0].split("-")[0]
        pooled.setdefault(domain, []).extend(json.loads(f.read_text()))
    avgs, levels = {}, {"hard": [], "normal": [], "easy": []}
    for domain, rows in pooled.items():
        wins = [[sum(len(r["chosen"][i]) > len(r["rejected"][j]) for r in rows) / len(rows) for j in range(3)]
                for i in range(3)]
        hard = (wins[0][1] + wins[0][2] + wins[1][2]) / 3
        normal = (wins[0][0] + wins[1][1] + wins[2][2]) / 3
        easy = (wins[1][0] + wins[2][0] + wins[2][1]) / 3
        avgs[domain] = (hard + normal + easy) / 3
        for k, v in (("hard", hard), ("normal", normal), ("easy", easy)):
            levels[k].append(v)
    assert length["sections"] == pytest.approx(avgs, abs=1e-12)
    assert length["score"] == pytest.approx(sum(avgs.values()) / len(avgs), abs=1e-12)
    for k, v in levels.items():
        assert length["extra"][k] == pytest.approx(sum(v) / len(v), abs=1e-12)
