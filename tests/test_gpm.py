"""General Preference embedding Models (kind `gpm`) on a tiny real checkpoint in the published GPM layout: a causal-LM
checkpoint whose safetensors shards also hold `value_head.weight` (and `prompt_head.weight`). Checks exact
antisymmetry, scores against an independent plain-torch recomputation from the saved tensors, one embedding pass per
response, and a sweep through the pipeline with the judge metrics."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rmorch.actors.gpm import NO_POINTWISE
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.sweep import run_sweep
from tests.conftest import FIXTURES
from tests.unit import test_gpm as fast
from tests.unit.test_gpm import _pair_matrix

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_gpm.py
tiny_lm = fast.tiny_lm  # a fixture shared with the fast tier
tiny_gpm = fast.tiny_gpm  # a fixture shared with the fast tier


@pytest.mark.slow
def test_gpm_through_the_pipeline(local_ray, tiny_gpm, rewardbench_file, tmp_path):
    from transformers import AutoTokenizer

    spec = spec_from_dict({
        "out": str(tmp_path / "out"),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1},
                   {"name": "rewardbench2", "data": str(FIXTURES / "rewardbench2" / "sample.jsonl")}],
        "models": [{"name": "gpm", "kind": "gpm", "path": tiny_gpm, "dtype": "float32", "max_length": 512,
                    "batch_tokens": 4096}],
    })
    assert run_sweep(spec).ok
    out = tmp_path / "out"
    tok = AutoTokenizer.from_pretrained(tiny_gpm)
    board = {e["suite"]: e for e in json.loads((out / "leaderboard.json").read_text())}
    for suite, n_items in (("rewardbench", 23), ("rewardbench2", 21)):
        items = {r["item_id"]: r for r in pq.read_table(out / "items" / f"{suite}.parquet").to_pylist()}
        rows = pq.read_table(out / "results" / "gpm" / suite).to_pylist()
        assert len(items) == n_items and {r["item_id"] for r in rows} == set(items)  # rows for every item
        compared = [r for r in rows if r["order"] is not None]
        for r in compared:
            item = items[r["item_id"]]
            n = len(item["candidates"])
            assert r["error"] is None and r["permutation"] == 0 and sorted(r["order"]) == list(range(n))
            s = _pair_matrix(r["scores"], n)
            assert all(s[i][j] == -s[j][i] for i in range(n) for j in range(n))  # exact, through Arrow too
            if n == 2:
                assert (r["verdict"] == r["order"][0]) == (s[0][1] > 0) or r["verdict"] is None
            # one embedding per candidate: the tokens seen are the candidates' own sequences, each once
            lengths = [min(len(tok(tok.apply_chat_template(item["prompt"] + [{"role": "assistant", "content": c}],
                                                           tokenize=False))["input_ids"]), 512)
                       for c in item["candidates"]]
            assert r["n_tokens"] == sum(lengths)
        credit: dict[str, list[float]] = {}
        for r in compared:
            n = len(r["order"])
            credit.setdefault(r["subset"], []).append(1 / n if r["verdict"] is None else float(r["verdict"] == 0))
        entry = board[suite]
        assert {k: v for k, v in entry["subsets"].items() if k != "Ties"} == pytest.approx(
            {k: sum(v) / len(v) for k, v in credit.items()})
        pointwise = [r for r in rows if r["order"] is None]
        if suite == "rewardbench2":  # Ties is always rated pointwise: a GPM has no pointwise score
            assert pointwise and all(r["subset"] == "Ties" and r["error"] == NO_POINTWISE for r in pointwise)
            assert len(compared) == 15
        else:
            assert not pointwise and len(compared) == 23
