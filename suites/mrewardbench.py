"""M-RewardBench, `CohereLabsCommunity/multilingual-reward-bench`: RewardBench v1 translated into 23 languages, one
hub config per language (split `test`). Columns: id, language, prompt, chosen, rejected, chosen_model,
rejected_model, source (= the RewardBench subset).

Data: the hub (one config per language; English, which has no config there, is the original RewardBench
`allenai/reward-bench` split `filtered` when `languages` asks for it), or `data: PATH`: one file with a `language`
column, or a directory holding one file per language (`deu_Latn.jsonl`, ...) and/or one sub-directory per language
config as on the hub (`deu_Latn/test-00000-of-00001.parquet`); a record without a `language` value takes its
file's (or sub-directory's) name. Option `languages: [deu_Latn, ...]` keeps only those languages.

Items: subset "<language>/<source>", item_id "<language>/<source>/<id>" (ids repeat across subsets and languages),
language = the language code.

Official scoring (../shared/notes/scoring.md; Cohere-Labs-Community/m-rewardbench analysis/plot_utils.py): per
language, RewardBench v1 (strict chosen > rejected per item, judges as in rmorch.suites.judging; subset accuracies;
sections weighted by THAT language's own item counts per subset, math-prm weighted as the language's code total;
language score = mean of its sections). Suite score = mean over the non-English languages present (the M-RewardBench
average; English is the reference, and only when English is the sole language is it the score).
`extra`: languages {lang: score}, language_sections {lang: {section: score}}, english (or null),
gap_to_english {lang: score - English} when English is present, mean_all_languages (English included).
`sections`: each section's mean over the non-English languages (as the score).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from rmorch.core.errors import DataError, SpecError
from rmorch.suites import register_suite
from rmorch.suites.base import (
    Suite,
    SuiteOptions,
    SuiteScore,
    optional_fields,
    pairwise_credit,
    require,
    require_str,
    subset_means,
)
from rmorch.suites.files import EXTENSIONS, Record, data_files, read_file, read_hub
from rmorch.suites.judging import judge_metrics, official_credits, pairwise_rating_credit
from rmorch.suites.rewardbench import SECTIONS, SUBSET_WEIGHTS, final_score, section_scores

HUB_ID = "CohereLabsCommunity/multilingual-reward-bench"
LANGUAGES = (
    "arb_Arab", "ces_Latn", "deu_Latn", "ell_Grek", "fra_Latn", "heb_Hebr", "hin_Deva", "ind_Latn", "ita_Latn",
    "jpn_Jpan", "kor_Hang", "nld_Latn", "pes_Arab", "pol_Latn", "por_Latn", "ron_Latn", "rus_Cyrl", "spa_Latn",
    "tur_Latn", "ukr_Cyrl", "vie_Latn", "zho_Hans", "zho_Hant",
)  # the 23 hub configs
ENGLISH = "eng_Latn"
ENGLISH_HUB = ("allenai/reward-bench", "filtered")  # English = the original RewardBench
_ENGLISH_NAMES = {"eng_latn", "eng", "en", "english"}
CODE_SUBSETS = [s for s in SECTIONS["Reasoning"] if s.startswith("hep-")]


def is_english(language: str) -> bool:
    return language.lower() in _ENGLISH_NAMES


def language_weights(counts: dict[str, int]) -> dict[str, float]:
    """Section weights of one language: its own item count per subset, math-prm weighted as its code total
    (its own count when the language has no code items)."""
    weights = {s: float(n) for s, n in counts.items()}
    if "math-prm" in weights:
        code = sum(counts.get(s, 0) for s in CODE_SUBSETS)
        if code:
            weights["math-prm"] = float(code)
    return weights


@dataclass(frozen=True)
class MRewardBenchOptions(SuiteOptions):
    languages: tuple[str, ...] | None = None  # keep only these language codes (hub: load only these configs)

    def __post_init__(self) -> None:
        if self.languages is not None and not self.languages:
            raise SpecError("languages", "an empty list would evaluate nothing; leave it out for all languages")


@register_suite
class MRewardBench(Suite):
    name = "m-rewardbench"
    version = "1"
    hub_id = HUB_ID
    hub_split = "test"
    Options = MRewardBenchOptions
    description = "M-RewardBench: RewardBench v1 in 23 languages; per-language v1 score, mean, gap to English"

    def hub_records(self, split: str) -> Iterator[Record]:
        for lang in self.options.languages or LANGUAGES:
            if is_english(lang):
                hub_id, hub_split = ENGLISH_HUB
                for rec in read_hub(hub_id, hub_split):
                    yield Record(rec.source, rec.row, {**rec.data, "language": lang, "source": rec.data.get("subset")})
            else:
                for rec in read_hub(HUB_ID, split, name=lang):
                    yield Record(rec.source, rec.row, {**rec.data, "language": lang})  # the config's code

    def records(self, data: str | None, split: str | None) -> Iterator[Record]:
        if data is None:
            yield from super().records(data, split)  # hub_records
            return
        wanted = self.options.languages
        seen: set[str] = set()
        for rec in _read_local_languages(data):
            lang = rec.data.get("language")
            if not isinstance(lang, str) or not lang.strip():
                raise DataError(rec.source, "missing language (no `language` value and no per-language file name)",
                                row=rec.row, field="language")
            seen.add(lang)
            if wanted is None or lang in wanted:
                yield rec
        if wanted is not None:
            missing = [lang for lang in wanted if lang not in seen]
            if missing:
                raise DataError(data, f"languages {missing} are not in the data; present: {sorted(seen)}")

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        for rec in records:
            lang = require_str(rec, "language")
            source = require_str(rec, "source")
            if source not in SUBSET_WEIGHTS:
                raise DataError(rec.source, f"unknown RewardBench subset '{source}'", row=rec.row, field="source")
            rid = require(rec, "id")
            yield {
                "suite": self.name,
                "subset": f"{lang}/{source}",
                "item_id": f"{lang}/{source}/{rid}",
                "prompt": [{"role": "user", "content": require_str(rec, "prompt")}],
                "candidates": [require_str(rec, "chosen"), require_str(rec, "rejected")],
                "correct": [0],
                "language": lang,
                "meta": optional_fields(rec, ("id", "chosen_model", "rejected_model")),
                "_record": rec,
            }

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad = official_credits(items, results, pointwise=pairwise_credit, ratings=pairwise_rating_credit)
        subsets = items.column("subset").to_pylist()
        acc = subset_means(subsets, credit)
        counts: dict[str, int] = {}
        for sub in subsets:
            counts[sub] = counts.get(sub, 0) + 1
        lang_sections, lang_scores = self.language_scores(acc, counts)
        score, sections = self.combine_subsets(acc, counts)
        english = next((lang for lang in lang_scores if is_english(lang)), None)
        extra: dict[str, Any] = {
            "languages": lang_scores,
            "language_sections": lang_sections,
            "english": lang_scores[english] if english else None,
            "mean_all_languages": float(np.mean(list(lang_scores.values()))) if lang_scores else math.nan,
            "score": "mean over the non-English languages of per-language RewardBench v1 scores",
        }
        if english:
            extra["gap_to_english"] = {lang: lang_scores[lang] - lang_scores[english]
                                       for lang in lang_scores if lang != english}
        return SuiteScore(
            score=score,
            sections=sections,
            subsets=acc,
            n_items=len(credit),
            n_errors=sum(bad),
            extra=extra,
            judge=judge_metrics(items, results, official=score),
            item_credits=credit,
        )

    @staticmethod
    def language_scores(acc: dict[str, float], counts: dict[str, int]) -> tuple[dict[str, dict[str, float]],
                                                                                  dict[str, float]]:
        """Per language: its RewardBench sections (weighted by its own subset counts) and its final score.
        Subsets are named "<language>/<source>"."""
        by_lang: dict[str, dict[str, str]] = {}
        for sub in acc:
            lang, source = sub.split("/", 1)
            by_lang.setdefault(lang, {})[source] = sub
        lang_sections: dict[str, dict[str, float]] = {}
        lang_scores: dict[str, float] = {}
        for lang, sources in by_lang.items():
            sub_acc = {source: acc[sub] for source, sub in sources.items()}
            weights = language_weights({source: counts[sub] for source, sub in sources.items()})
            lang_sections[lang] = section_scores(sub_acc, weights)
            lang_scores[lang] = final_score(lang_sections[lang], {})
        return lang_sections, lang_scores

    def combine_subsets(self, means: dict[str, float], counts: dict[str, int]) -> tuple[float, dict[str, float]]:
        """The mean over non-English languages of the per-language scores, and of their sections."""
        lang_sections, lang_scores = self.language_scores(means, counts)
        english = next((lang for lang in lang_scores if is_english(lang)), None)
        others = [lang for lang in lang_scores if lang != english] or list(lang_scores)
        score = float(np.mean([lang_scores[lang] for lang in others])) if others else math.nan
        sections = {sec: float(np.mean([lang_sections[lang][sec] for lang in others if sec in lang_sections[lang]]))
                    for sec in SECTIONS if any(sec in lang_sections[lang] for lang in others)}
        return score, sections


def _read_local_languages(path: str) -> Iterator[Record]:
    """Records of a file, or of a directory of per-language files and/or per-language sub-directories, each
    record given its file's (sub-directory's) name as language when it has none."""
    if not os.path.isdir(path):
        for file in data_files(path):
            yield from read_file(file)
        return
    entries = sorted(e for e in os.listdir(path) if not e.startswith("."))
    found = False
    for entry in entries:
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            lang, files = entry, data_files(full)
        elif entry.endswith(EXTENSIONS):
            lang, files = entry.split(".", 1)[0], [full]
        else:
            continue
        for file in files:
            for rec in read_file(file):
                found = True
                if not rec.data.get("language"):
                    rec = Record(rec.source, rec.row, {**rec.data, "language": lang})
                yield rec
    if not found:
        raise DataError(path, f"no data files ({', '.join(EXTENSIONS)}) in this directory or its language folders")
