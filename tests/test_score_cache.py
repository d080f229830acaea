"""Nothing is scored twice: identical requests (same settings, seed and content) across suites, units and reruns
are computed once and reused (rmorch.orchestrator.plan.score_cache, rmorch.actors.worker), on a real tiny classifier and real Ray."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_score_cache.py


def _rows(out) -> list[dict]:
    return pq.read_table(out / "results" / "tiny-rm").to_pylist()


def _spec(out, rewardbench_file, duplicates, tiny_classifier, limit=2, shard_size=8):
    return spec_from_dict({
        "seed": 0,
        "out": str(out),
        "shard_size": shard_size,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": limit},
                   *({"name": name, "kind": "file", "data": str(duplicates),
                      "columns": {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}}
                     for name in ("copies", "copies-again"))],
        "models": [{"name": "tiny-rm", "kind": "classifier", "path": tiny_classifier, "dtype": "float32",
                    "max_length": 256, "batch_tokens": 2048}],
    })


@pytest.fixture()
def duplicates(tmp_path, rewardbench_file):
    """A user file holding 6 RewardBench items (prompt and responses verbatim), 2 of them twice."""
    lines = [json.loads(line) for line in rewardbench_file.read_text().splitlines()[:400]]
    picked = [r for r in lines if r["subset"] == "alpacaeval-easy"][:6]
    picked += picked[:2]
    path = tmp_path / "copies.jsonl"
    path.write_text("".join(json.dumps({"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}) + "\n"
                            for r in picked))
    return path


@pytest.mark.slow
def test_identical_requests_are_scored_once_across_suites_units_and_reruns(
        local_ray, tiny_classifier, rewardbench_file, duplicates, tmp_path):
    out = tmp_path / "out"
    first = run_sweep(_spec(out, rewardbench_file, duplicates, tiny_classifier))
    assert first.ok
    rows = _rows(out)
    n_items = json.loads((out / "run.json").read_text())["items"]
    assert len(rows) == 2 * (n_items["rewardbench"] + 2 * n_items["copies"]) == 2 * (46 + 2 * 8)
    keys = {r["content_key"] for r in rows}
    assert None not in keys
    # One replica: every distinct request was computed exactly once, the rest reused.
    computed = [r for r in rows if not r["cached"]]
    assert len(computed) == len(keys) < len(rows)
    by_key: dict[str, set[float]] = {}
    for r in rows:
        by_key.setdefault(r["content_key"], set()).add(r["score"])
    assert all(len(v) == 1 for v in by_key.values())  # copies carry the very same number
    copies = [r for r in rows if r["suite"] == "copies"]
    assert len(copies) == 16 and len({r["content_key"] for r in copies}) == 12  # 2 items twice in the file
    assert {r["content_key"] for r in rows if r["suite"] == "copies-again"} == {r["content_key"] for r in copies}
    assert len(keys) <= 2 * 46 + 12

    # Rerun with another shard size: every unit is new, every request known -> no model is loaded at all.
    again = run_sweep(_spec(out, rewardbench_file, duplicates, tiny_classifier, shard_size=5))
    last = json.loads((out / "run.json").read_text())["last_run"]
    assert again.stats.loads == {} and last["units_computed"] == 0
    assert last["units_from_cache"] == last["units_planned"] > 0
    assert last["requests_from_cache"] == len(rows)
    reused = [r for r in _rows(out) if r["unit_key"] not in {x["unit_key"] for x in rows}]
    assert len(reused) == len(rows) and all(r["cached"] for r in reused)
    assert {(r["suite"], r["item_id"], r["candidate"], r["score"]) for r in reused} == {
        (r["suite"], r["item_id"], r["candidate"], r["score"]) for r in rows}

    # A larger sample: the old requests travel with their units as known outcomes, only the new ones are scored;
    # the numbers equal a fresh store's.
    bigger = run_sweep(_spec(out, rewardbench_file, duplicates, tiny_classifier, limit=3))
    assert bigger.ok and bigger.stats.loads == {"tiny-rm": 1}
    fresh_out = tmp_path / "fresh"
    run_sweep(_spec(fresh_out, rewardbench_file, duplicates, tiny_classifier, limit=3))
    latest = {}
    for r in _rows(out):
        latest.setdefault((r["suite"], r["item_id"], r["candidate"]), []).append(r)
    fresh = {(r["suite"], r["item_id"], r["candidate"]): r["score"] for r in _rows(fresh_out)}
    assert set(fresh) <= set(latest)
    assert all(abs(latest[k][-1]["score"] - fresh[k]) < 1e-4 for k in fresh)
    old_keys = {r["content_key"] for r in rows}
    bigger_rows = [r for r in _rows(out) if r["unit_key"] not in {x["unit_key"] for x in rows + reused}]
    assert bigger_rows and all(r["cached"] for r in bigger_rows if r["content_key"] in old_keys)
    assert any(not r["cached"] for r in bigger_rows)
