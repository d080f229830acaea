"""`kind: file`: the user's own data in each column-mapping form, spec and data errors, and a random pairwise file
(response_a/response_b/label form) swept with the length baseline, checked against accuracy computed here straight
from the file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import rmorch.suites.userfile  # noqa: F401  (registers the `file` kind)
from rmorch.orchestrator.spec.parse import spec_from_dict
from tests.unit.test_userfile import write_jsonl

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_userfile.py


# ---- an unseen random pairwise file through the whole pipeline -----------------------------------------------


def random_pairwise_file(path: Path, rng: random.Random, n: int, a_value, b_value) -> list[dict]:
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "ok", "no"]
    rows = []
    for i in range(n):
        row = {"uid": f"r{i:04d}-{rng.randrange(10**6)}",
               "instruction": " ".join(rng.choices(words, k=rng.randint(1, 8))),
               "first": " ".join(rng.choices(words, k=rng.randint(1, 12))),
               "second": " ".join(rng.choices(words, k=rng.randint(1, 12))),
               "pref": rng.choice([a_value, b_value]),
               "cat": rng.choice(["x", "y", "z"])}
        if rng.random() < 0.1:
            row["second"] = "#" * len(row["first"])  # some ties: a tie is wrong
        rows.append(row)
    write_jsonl(path, rows)
    return rows


@pytest.mark.slow
def test_random_unseen_pairwise_file_length_sweep_matches_direct_accuracy(local_ray, tmp_path: Path) -> None:
    from rmorch.orchestrator.sweep import run_sweep

    rng = random.Random(20240611)
    a_value, b_value = rng.choice([("A", "B"), (1, 2)])
    data = tmp_path / "unseen.jsonl"
    rows = random_pairwise_file(data, rng, 97, a_value, b_value)
    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "shard_size": 20,
        "suites": [{"name": "unseen-prefs", "kind": "file", "data": str(data), "a_wins": a_value,
                    "columns": {"prompt": "instruction", "response_a": "first", "response_b": "second",
                                "label": "pref", "subset": "cat", "id": "uid"}}],
        "models": ["length"],
    })
    result = run_sweep(spec)
    assert result.ok

    # Accuracy straight from the file: the preferred response strictly longer than the other.
    def right(r: dict) -> bool:
        good, bad = (r["first"], r["second"]) if r["pref"] == a_value else (r["second"], r["first"])
        return len(good) > len(bad)

    want = sum(map(right, rows)) / len(rows)
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    (entry,) = [e for e in board if e["suite"] == "unseen-prefs"]
    assert entry["model"] == "length" and entry["n_items"] == len(rows) and entry["n_errors"] == 0
    assert entry["n_missing"] == 0
    assert entry["score"] == pytest.approx(want, abs=1e-12)
    for cat in {r["cat"] for r in rows}:
        mine = [right(r) for r in rows if r["cat"] == cat]
        assert entry["subsets"][cat] == pytest.approx(sum(mine) / len(mine), abs=1e-12)
    assert (tmp_path / "out" / "items" / "unseen-prefs.parquet").exists()

    # `rmorch report OUT` in a new process knows the suite only from the store: the kind is recorded in run.json.
    import subprocess
    import sys

    script = ("from rmorch.orchestrator.report.compute import build_leaderboard; from rmorch.orchestrator.store.results import ResultStore; "
              f"print([round(e.score, 12) for e in build_leaderboard(ResultStore({str(tmp_path / 'out')!r}))])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str([round(want, 12)])
