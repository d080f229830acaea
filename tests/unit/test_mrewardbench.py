"""M-RewardBench: loader (per-language files, one file, hub-layout folders), the per-language RewardBench v1 metric
checked by hand, and the length baseline through the whole pipeline, checked by an independent computation written
here from ../shared/notes/scoring.md without rmorch code."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rmorch.suites.mrewardbench  # noqa: F401  (registers the suite)
from rmorch.core.errors import DataError, SpecError
from rmorch.core.schema import results_table
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.suites import get_suite_class
from tests.unit.test_userfile import length_results  # the same length-baseline rows

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_mrewardbench.py
FIXTURE = Path(__file__).parents[1] / "fixtures" / "m-rewardbench"
LANGS = ("deu_Latn", "eng_Latn", "jpn_Jpan")

# Typed again from the notes: section -> subsets (weights are each language's own counts, math-prm = code total).
SECTIONS = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond",
               "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}


def fixture_rows() -> list[dict]:
    rows = []
    for lang in LANGS:
        rows += [json.loads(line) for line in (FIXTURE / f"{lang}.jsonl").read_text("utf-8").splitlines() if line]
    return rows


def independent(rows: list[dict], correct) -> dict:
    """Per-language v1 scores from raw rows and a per-row correctness function."""
    hits: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        hits[r["language"]][r["source"]].append(1 if correct(r) else 0)
    per_lang = {}
    for lang, by_src in hits.items():
        weight = {s: len(v) for s, v in by_src.items()}
        code = sum(n for s, n in weight.items() if s.startswith("hep-"))
        if "math-prm" in weight and code:
            weight["math-prm"] = code
        secs = []
        for members in SECTIONS.values():
            present = [s for s in members if s in by_src]
            if present:
                secs.append(sum(sum(by_src[s]) / len(by_src[s]) * weight[s] for s in present)
                            / sum(weight[s] for s in present))
        per_lang[lang] = sum(secs) / len(secs)
    non_en = [v for k, v in per_lang.items() if k != "eng_Latn"]
    return {"languages": per_lang, "score": sum(non_en) / len(non_en),
            "gap": {k: v - per_lang["eng_Latn"] for k, v in per_lang.items() if k != "eng_Latn"}}


def by_length(r: dict) -> bool:
    return len(r["chosen"]) > len(r["rejected"])


# ---- loading -------------------------------------------------------------------------------------------------


def test_loads_one_file_per_language_with_unique_ids() -> None:
    items = get_suite_class("m-rewardbench")().load(str(FIXTURE))
    rows = fixture_rows()
    assert items.num_rows == len(rows)
    ids = items.column("item_id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert "eng_Latn/hep-python/3692" in ids and "deu_Latn/alpacaeval-easy/100" in ids
    assert set(items.column("language").to_pylist()) == set(LANGS)
    first = items.slice(0, 1).to_pylist()[0]
    assert first["subset"] == f"{first['language']}/alpacaeval-easy"
    assert first["correct"] == [0] and len(first["candidates"]) == 2
    assert first["prompt"][0]["role"] == "user"


def test_single_file_with_language_column_and_language_filter(tmp_path: Path) -> None:
    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fixture_rows()), "utf-8")
    cls = get_suite_class("m-rewardbench")
    assert cls().load(str(path)).num_rows == len(fixture_rows())
    only = cls(cls.Options(languages=("jpn_Jpan", "eng_Latn"))).load(str(path))
    assert set(only.column("language").to_pylist()) == {"jpn_Jpan", "eng_Latn"}
    assert only.num_rows == sum(r["language"] in ("jpn_Jpan", "eng_Latn") for r in fixture_rows())
    with pytest.raises(DataError, match="fra_Latn"):
        cls(cls.Options(languages=("fra_Latn",))).load(str(path))


def test_hub_layout_folders_without_language_column(tmp_path: Path) -> None:
    """As on the hub: one folder per language config with test-00000-of-00001.parquet; language from the folder."""
    for lang in ("deu_Latn", "jpn_Jpan"):
        rows = [{k: v for k, v in r.items() if k != "language"} for r in fixture_rows() if r["language"] == lang]
        (tmp_path / lang).mkdir()
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / lang / "test-00000-of-00001.parquet")
    items = get_suite_class("m-rewardbench")().load(str(tmp_path))
    assert set(items.column("language").to_pylist()) == {"deu_Latn", "jpn_Jpan"}
    assert items.num_rows == sum(r["language"] != "eng_Latn" for r in fixture_rows())


def test_bad_source_names_file_row_field(tmp_path: Path) -> None:
    rows = fixture_rows()[:3]
    rows[1]["source"] = "alpaca-easy"
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"row 2: field 'source': unknown RewardBench subset 'alpaca-easy'"):
        get_suite_class("m-rewardbench")().load(str(path))


def test_languages_option_in_the_spec() -> None:
    spec = spec_from_dict({"suites": [{"name": "m-rewardbench", "languages": ["deu_Latn"]}], "models": ["length"]})
    assert spec.suites[0].options.languages == ("deu_Latn",)
    with pytest.raises(SpecError, match="languages"):
        spec_from_dict({"suites": [{"name": "m-rewardbench", "languages": []}], "models": ["length"]})


# ---- metric ----------------------------------------------------------------------------------------------------


def test_metric_by_hand_on_the_fixture() -> None:
    suite = get_suite_class("m-rewardbench")()
    items = suite.load(str(FIXTURE))
    s = suite.score(items, length_results(items))
    want = independent(fixture_rows(), by_length)
    assert s.extra["languages"] == pytest.approx(want["languages"], abs=1e-12)
    assert s.score == pytest.approx(want["score"], abs=1e-12)
    assert s.extra["gap_to_english"] == pytest.approx(want["gap"], abs=1e-12)
    assert s.extra["english"] == pytest.approx(want["languages"]["eng_Latn"], abs=1e-12)
    assert s.n_items == items.num_rows and s.n_errors == 0


def test_math_prm_weighted_as_the_languages_code_total() -> None:
    """eng_Latn: 4 math-prm items and 3 code items -> weight 3, not 4 (and not the v1 984)."""
    from rmorch.suites.mrewardbench import language_weights

    assert language_weights({"math-prm": 4, "hep-python": 2, "hep-go": 1}) == {"math-prm": 3, "hep-python": 2,
                                                                               "hep-go": 1}
    assert language_weights({"math-prm": 4}) == {"math-prm": 4}
    suite = get_suite_class("m-rewardbench")()
    items = suite.load(str(FIXTURE))
    rows = []
    for it in items.to_pylist():  # chosen wins everywhere except English math-prm
        lose = it["subset"] == "eng_Latn/math-prm"
        for k in (0, 1):
            rows.append({"unit_key": "u", "model": "m", "suite": it["suite"], "subset": it["subset"],
                         "item_id": it["item_id"], "candidate": k, "score": float(k if lose else 1 - k),
                         "settings_hash": "h"})
    s = suite.score(items, results_table(rows))
    # English Reasoning = (0 * 3 + 1 * 3) / 6 = 0.5; other sections 1.
    assert s.extra["language_sections"]["eng_Latn"]["Reasoning"] == pytest.approx(0.5)
    assert s.extra["languages"]["eng_Latn"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert s.score == pytest.approx(1.0)
    assert s.extra["gap_to_english"]["deu_Latn"] == pytest.approx(0.125)


def test_judge_verdicts_are_credited() -> None:
    suite = get_suite_class("m-rewardbench")()
    items = suite.load(str(FIXTURE))
    rows = [{"unit_key": "u", "model": "j", "suite": it["suite"], "subset": it["subset"], "item_id": it["item_id"],
             "order": [0, 1], "permutation": 0, "verdict": 0, "parsed": True, "raw_output": "[[A]]",
             "settings_hash": "h"} for it in items.to_pylist()]
    s = suite.score(items, results_table(rows))
    assert s.score == 1.0 and s.extra["gap_to_english"]["jpn_Jpan"] == 0.0
    assert s.judge is not None and s.judge["official"] == 1.0
