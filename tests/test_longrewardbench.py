"""Long-RewardBench (rmorch.suites.longrewardbench): loader on hub-schema fixtures, the official ranking credit and results
table against hand-computed cases, and one sweep through the real pipeline: the `length` baseline checked against an
independent computation, and a tiny classifier with a small max_length whose rows are flagged truncated."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

import rmorch.suites.longrewardbench  # noqa: F401  (registers the suite)
from tests.unit.test_longrewardbench import DATA, _rows

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_longrewardbench.py


def _independent_length(rows):
    """Official rule written again from Long-RM evaluator.py: rank by score (here: characters) descending; the item
    result is the share of candidates whose rank equals their gold index; AVG. = item mean."""
    per_item = {}
    for task, r in rows:
        cands = [r["chosen"], r["rejected"]] if r["tasktype"] == "PairWise" else r["candidates"]
        lengths = [len(c) for c in cands]
        assert len(set(lengths)) == len(lengths)  # no ties in the fixture
        order = sorted(range(len(cands)), key=lambda i: -lengths[i])  # order[rank] = candidate
        per_item[(task, r["tasktype"])] = per_item.get((task, r["tasktype"]), []) + [
            sum(order[k] == k for k in range(len(cands))) / len(cands)]
    return per_item


@pytest.mark.slow
def test_sweep_length_and_truncating_classifier(local_ray, tiny_classifier, tmp_path):
    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    spec = spec_from_dict({
        "out": str(tmp_path / "out"), "shard_size": 4,
        "suites": [{"name": "long-rewardbench", "data": str(DATA)}],
        "models": ["length", {"name": "tiny-rm", "kind": "classifier", "path": tiny_classifier, "dtype": "float32",
                              "max_length": 96, "truncation_side": "left", "batch_tokens": 1024}],
    })
    result = run_sweep(spec)
    assert result.ok
    board = {e["model"]: e for e in json.loads((tmp_path / "out" / "leaderboard.json").read_text())}

    per = _independent_length(_rows())
    every = [c for v in per.values() for c in v]
    length = board["length"]
    assert length["n_items"] == 9 and length["n_errors"] == 0
    assert length["subsets"] == pytest.approx({f"{tt}/{t}": sum(v) / len(v) for (t, tt), v in per.items()}, abs=1e-12)
    pw = [c for (t, tt), v in per.items() if tt == "PairWise" for c in v]
    bon = [c for (t, tt), v in per.items() if tt == "BestOfN" for c in v]
    assert length["sections"] == pytest.approx({"PairWise Avg.": sum(pw) / len(pw),
                                                "Rank Avg.": sum(bon) / len(bon)}, abs=1e-12)
    assert length["score"] == pytest.approx(sum(every) / len(every), abs=1e-12)

    # The classifier's truncation policy is recorded per row: every long-context input is cut to 96 tokens.
    tiny = board["tiny-rm"]
    assert tiny["n_items"] == 9 and tiny["n_errors"] == 0
    rows = pq.read_table(tmp_path / "out" / "results" / "tiny-rm").to_pylist()
    assert len(rows) == sum(2 if r["tasktype"] == "PairWise" else len(r["candidates"]) for _, r in _rows())
    assert all(r["truncated"] and r["n_tokens"] == 96 for r in rows)
    assert {(r["max_length"], r["truncation_side"]) for r in rows} == {(96, "left")}
