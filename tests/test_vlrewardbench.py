"""VL-RewardBench: loader on the real local rows (no images), the `images` option with generated PNGs, a bad row,
hand-computed metric cases, and the `length` baseline through the pipeline checked against an independent
computation written here from the official cal.py rules (no rmorch code)."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from tests.unit import test_vlrewardbench as fast
from tests.unit.test_vlrewardbench import DATA

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_vlrewardbench.py
rows = fast.rows  # a fixture shared with the fast tier


# ---- the length baseline through the whole pipeline ----------------------------------------------------------

GROUP_OF = {"vlfeedback": "general", "wildvision-battle": "general", "povid": "hallucination",
            "rlaif-v": "hallucination", "rlhf-v": "hallucination", "reasoning_tasks": "reasoning"}


def independent_length(rows):
    per_source: dict[str, list[int]] = defaultdict(list)
    per_group: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        good = r["response"][r["human_ranking"].index(0)]
        bad = r["response"][r["human_ranking"].index(1)]
        hit = 1 if len(good) > len(bad) else 0
        src = r["image_path"].split("/")[1]
        per_source[src].append(hit)
        per_group[GROUP_OF[src]].append(hit)
    src_acc = {s: sum(v) / len(v) for s, v in per_source.items()}
    grp_acc = {g: sum(v) / len(v) for g, v in per_group.items()}
    overall = sum(sum(v) for v in per_group.values()) / len(rows)
    macro = sum(grp_acc.values()) / 3
    return overall, macro, grp_acc, src_acc


@pytest.mark.slow
def test_length_baseline_sweep(local_ray, tmp_path, rows):
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "vl-rewardbench", "data": DATA}],
        "models": ["length"],
    })
    result = run_sweep(spec)
    assert result.ok and result.n_skipped == 0
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    (length,) = [e for e in board if e["model"] == "length"]
    assert length["n_items"] == 1250 and length["n_errors"] == 0
    overall, macro, groups, sources = independent_length(rows)
    assert length["score"] == pytest.approx(overall, abs=1e-12)
    assert {k.lower(): v for k, v in length["sections"].items()} == pytest.approx(groups, abs=1e-12)
    assert length["subsets"] == pytest.approx(sources, abs=1e-12)
    assert length["extra"]["macro_avg"] == pytest.approx(macro, abs=1e-12)
