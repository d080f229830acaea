"""RewardMATH, `RewardMATH/RewardMATH` on the Hugging Face hub: 483 MATH problems, each with 1 correct solution
(solution_reference 'human_to_GPT-4') and 9 rejected ones, every solution scored on its own.

Data (the hub schema = the GitHub repo's dataset/benchmark/RewardMATH_direct.json, one row per solution): problem,
answer, eval_solution (list of steps), solution_reference, solution_type ('chosen' / 'rejected'), subject, level,
problem_id, id. The loader groups rows by problem_id into one item: candidates = the chosen solution first, then the
rejected ones in data order (`correct: [0]`); a solution's text is its steps joined by "\\n", as the official code
builds classifier inputs (kimsh0507/RewardMATH_official src/prompts.py, model_type "classifier"). Given a
directory, only its `*direct*` files are read (the repo also ships a pairwise-format file that is not this suite).

Official scoring (../shared/notes/scoring.md; kimsh0507/RewardMATH_official src/evaluation/eval.py,
RewardMATHEvaluation.get_results, "reward Acc"): a problem is correct iff min(chosen scores) > max(rejected scores),
i.e. the correct solution scores strictly above all 9 others; a tie is wrong, an error (NaN) is wrong. Score =
accuracy over problems. Beside it: accuracy per subject (`subsets`) and per level, and the official "reward MRR"
(1 / rank of the chosen solution, ties ranked pessimistically as the official sort does; an error gives 0).
Generative judges (rmorch.suites.judging): ratings use the same strict rule (the README's GPT-4 1-10 ratings number is
computed so); an n-way verdict in the base order counts 1 if it names the correct solution.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from rmorch.core.errors import DataError
from rmorch.suites import register_suite
from rmorch.suites.base import Suite, SuiteScore, candidate_scores, plain, require_str, subset_means
from rmorch.suites.files import Record
from rmorch.suites.judging import judge_metrics, official_credits

CHOSEN_REFERENCE = "human_to_GPT-4"
DEFAULT_SUBSET = "RewardMATH"


def strict_top_credit(scores: Sequence[float], correct_index: int = 0) -> float:
    """1 if the correct candidate scores strictly above every other one, else 0 (ties and NaN are wrong)."""
    if any(math.isnan(s) for s in scores):
        return 0.0
    mine = scores[correct_index]
    return 1.0 if all(mine > s for k, s in enumerate(scores) if k != correct_index) else 0.0


def reciprocal_rank(scores: Sequence[float], correct_index: int = 0) -> float:
    """The official MRR term: 1 / (1 + number of other candidates scoring >= the correct one); 0 with a NaN."""
    if any(math.isnan(s) for s in scores):
        return 0.0
    mine = scores[correct_index]
    return 1.0 / (1 + sum(1 for k, s in enumerate(scores) if k != correct_index and s >= mine))


def _steps(rec: Record) -> str:
    if "eval_solution" not in rec.data:
        raise DataError(rec.source, "missing field", row=rec.row, field="eval_solution")
    value = plain(rec.data["eval_solution"])
    if isinstance(value, str):
        steps = [value]
    elif isinstance(value, (list, tuple)) and value and all(isinstance(s, str) for s in value):
        steps = list(value)
    else:
        raise DataError(rec.source, f"expected a non-empty list of step strings, got {value!r:.80}", row=rec.row,
                        field="eval_solution")
    text = "\n".join(steps)
    if not text.strip():
        raise DataError(rec.source, "empty solution", row=rec.row, field="eval_solution")
    return text


def _scalar(rec: Record, name: str, required: bool) -> Any:
    value = plain(rec.data.get(name))
    if value is None:
        if required:
            raise DataError(rec.source, "missing field", row=rec.row, field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DataError(rec.source, f"expected an integer or string, got {value!r:.40}", row=rec.row, field=name)
    return value


@register_suite
class RewardMATH(Suite):
    name = "rewardmath"
    version = "1"
    hub_id = "RewardMATH/RewardMATH"
    hub_split = "test"  # not verifiable offline: pass `split:` / a local copy if the hub names it differently
    description = "RewardMATH: 483 math problems, 1 correct vs 9 rejected solutions (correct iff strictly on top)"

    def local_files(self, files: list[str]) -> list[str]:
        direct = [f for f in files if "direct" in os.path.basename(f).lower()]
        return direct or files

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        groups: dict[str, list[tuple[Record, str, str]]] = {}
        for rec in records:
            pid = str(_scalar(rec, "problem_id", required=True))
            kind = require_str(rec, "solution_type")
            if kind not in ("chosen", "rejected"):
                raise DataError(rec.source, f"expected 'chosen' or 'rejected', got '{kind}'", row=rec.row,
                                field="solution_type")
            require_str(rec, "problem")
            groups.setdefault(pid, []).append((rec, kind, _steps(rec)))
        for pid, rows in groups.items():
            first = rows[0][0]
            problem = first.data["problem"]
            for rec, _, _ in rows[1:]:
                if rec.data["problem"] != problem:
                    raise DataError(rec.source, f"problem text differs from the other rows of problem_id {pid} "
                                    f"(first at {first.where})", row=rec.row, field="problem")
            chosen = [r for r in rows if r[1] == "chosen"]
            rejected = [r for r in rows if r[1] == "rejected"]
            if len(chosen) != 1:
                at = chosen[1][0] if len(chosen) > 1 else first
                raise DataError(at.source, f"problem_id {pid} has {len(chosen)} 'chosen' solutions; expected 1",
                                row=at.row, field="solution_type")
            if not rejected:
                raise DataError(first.source, f"problem_id {pid} has no 'rejected' solution", row=first.row,
                                field="solution_type")
            ordered = chosen + rejected
            subject = first.data.get("subject")
            subset = subject if isinstance(subject, str) and subject.strip() else DEFAULT_SUBSET
            level = _scalar(first, "level", required=False)
            meta = {
                "problem_id": pid,
                "answer": first.data.get("answer") if isinstance(first.data.get("answer"), str) else None,
                "level": level,
                "solution_reference": [r.data.get("solution_reference") for r, _, _ in ordered],
                "row_ids": [_scalar(r, "id", required=False) for r, _, _ in ordered],
            }
            yield {
                "suite": self.name,
                "subset": subset,
                "item_id": pid,
                "prompt": [{"role": "user", "content": problem}],
                "candidates": [text for _, _, text in ordered],
                "correct": [0],
                "language": "en",
                "meta": meta,
                "_record": first,
            }

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad = official_credits(items, results, pointwise=lambda s: strict_top_credit(s, 0),
                                       ratings=strict_top_credit)
        subsets = items.column("subset").to_pylist()
        scores, _ = candidate_scores(items, results)
        levels = [str(json.loads(m).get("level")) if m else "None" for m in items.column("meta").to_pylist()]
        judge = judge_metrics(items, results, official=float(np.mean(credit)) if credit else math.nan)
        extra: dict[str, Any] = {
            "levels": subset_means(levels, credit),
            "n_correct": float(sum(credit)),
        }
        if judge is None:  # reward models: the official MRR from the scores
            extra["mrr"] = float(np.mean([reciprocal_rank(s, 0) for s in scores])) if scores else math.nan
        final = float(np.mean(credit)) if credit else math.nan
        return SuiteScore(
            score=final,
            sections={},
            subsets=subset_means(subsets, credit),
            n_items=len(credit),
            n_errors=sum(bad),
            extra=extra,
            judge=judge,
        )
