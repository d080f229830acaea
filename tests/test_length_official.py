"""The `length` baseline over the full real RewardBench through the whole pipeline (local Ray, store, report),
checked against an independent computation of the official rules written here from ../shared/notes/scoring.md
without any rmorch code."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

# Typed again from the notes (not imported from rmorch): section -> {subset: weight}.
OFFICIAL = {
    "Chat": {"alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
             "mt-bench-med": 40},
    "Chat Hard": {"mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
                  "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46},
    "Safety": {"refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
               "xstest-should-respond": 250, "donotanswer": 136},
    "Reasoning": {"math-prm": 984, "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164,
                  "hep-python": 164, "hep-rust": 164},
}


def independent_length_scores(path) -> tuple[float, dict[str, float], dict[str, float]]:
    hits: dict[str, list[int]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            hits[row["subset"]].append(1 if len(row["chosen"]) > len(row["rejected"]) else 0)
    subsets = {s: sum(v) / len(v) for s, v in hits.items()}
    sections = {
        sec: sum(subsets[s] * w for s, w in members.items()) / sum(members.values())
        for sec, members in OFFICIAL.items()
    }
    return sum(sections.values()) / 4, sections, subsets


@pytest.mark.slow
def test_length_baseline_full_rewardbench_matches_official_rules(local_ray, rewardbench_file, tmp_path):
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent)}],
        "models": ["length", "random"],
    })
    result = run_sweep(spec)
    assert result.ok and result.n_skipped == 0
    assert result.stats.loads == {"length": 1, "random": 1}

    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    length = next(e for e in board if e["model"] == "length")
    assert set(length) >= {"model", "suite", "score", "sections", "subsets", "n_items", "n_errors"}
    assert length["n_items"] == 2985 and length["n_errors"] == 0

    final, sections, subsets = independent_length_scores(rewardbench_file)
    assert length["score"] == pytest.approx(final, abs=1e-12)
    assert length["sections"] == pytest.approx(sections, abs=1e-12)
    assert length["subsets"] == pytest.approx(subsets, abs=1e-12)

    # Every stored length score is the exact character count of its response.
    import pyarrow.parquet as pq

    items = pq.read_table(tmp_path / "out" / "items" / "rewardbench.parquet").to_pylist()
    cands = {r["item_id"]: r["candidates"] for r in items}
    rows = pq.read_table(tmp_path / "out" / "results" / "length").to_pylist()
    assert len(rows) == 2 * 2985
    assert all(r["score"] == len(cands[r["item_id"]][r["candidate"]]) for r in rows)

    rand = next(e for e in board if e["model"] == "random")
    assert 0.40 < rand["score"] < 0.60  # a seeded coin is a coin


@pytest.mark.slow
def test_rewardbench2_through_the_pipeline(local_ray, tmp_path):
    """RewardBench 2 (fixture in the hub schema) through plan, Ray, store and report: the leaderboard number is the
    suite's metric over the stored rows, and the length baseline's Non-Ties credits are checked by hand."""
    from tests.conftest import FIXTURES

    data = FIXTURES / "rewardbench2" / "sample.jsonl"
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "shard_size": 5,
        "suites": [{"name": "rewardbench2", "data": str(data)}],
        "models": ["length", "random"],
    })
    result = run_sweep(spec)
    assert result.ok
    board = {e["model"]: e for e in json.loads((tmp_path / "out" / "leaderboard.json").read_text())}
    length = board["length"]
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    assert length["n_items"] == len(rows) and length["n_errors"] == 0 and length["sections"] == {}
    for subset in {r["subset"] for r in rows} - {"Ties"}:
        credits = []
        for r in (r for r in rows if r["subset"] == subset):
            lengths = [len(c) for c in r["chosen"] + r["rejected"]]
            top = max(lengths)
            credits.append(1 / lengths.count(top) if lengths[0] == top else 0.0)
        assert length["subsets"][subset] == pytest.approx(sum(credits) / len(credits), abs=1e-12)
    assert length["score"] == pytest.approx(sum(length["subsets"].values()) / len(length["subsets"]), abs=1e-12)
