"""`gsm8k-bon`: best-of-N selection on GSM8K test problems, each with N sampled solutions labelled correct or not.

Data: no hub id (the pool is not on the hub; GSM8K itself is `openai/gsm8k` config main, split test, without
candidates), so `data: PATH` is required. Two sources load the same way:
- the GSM8K paper's model solutions, `example_model_solutions.jsonl` of github.com/openai/grade-school-math (a
  directory holding that file reads only it): 1,319 problems, each with `question`, `ground_truth` (a worked
  solution ending in "A: N") and four solutions `{is_correct, solution}` under 6b_finetuning, 6b_verification,
  175b_finetuning, 175b_verification;
- pool files written by `rmorch generate` (rmorch.orchestrator.generate): the same shape, with the samples under
  sample_0 .. sample_{N-1}, plus `id` (the problem's index in the GSM8K file it was sampled from) and the
  generation settings as plain top-level fields.
Every top-level field whose value is a JSON object is a candidate, in the file's key order; it must hold `solution`
(a string; an empty one is kept: a sampled policy may answer nothing, and that is a real, wrong sample) and
`is_correct` (a boolean). The other top-level fields go to `meta`. Per item: prompt = the question as one user
message; gold = is_correct as 1.0 / 0.0; correct = the indices of the correct candidates (empty when none is:
nothing downstream needs a correct one); item_id = `id`, else the 0-based line index (the problem's index in
the GSM8K test file, whose order the model-solutions file follows); subset "gsm8k".

Official number (the best-of-N pick, rmorch.suites.bestofn): per item, the expected gold of the candidate the model ranks
first among all N (ties at the top share the pick evenly: `top_pick_gold`), mean over items. An error or a missing
score anywhere in an item makes it wrong (0), as on every leaderboard here. Generative judges: the base-order
n-way verdict scores the gold of the candidate it names; an unparsed verdict scores the item's mean gold (a
uniform pick); an error or a missing base-order row 0. Ratings (protocol `rating`) are pointwise scores, unparsed
ones rank below every valid rating (the official invalid rating -1), so an all-unparsed item is a uniform pick.
Beside it in `extra`: `oracle` (share of items with any correct candidate: 67.2 % on the full model-solutions
file), `random` (mean gold: the expected score of a uniform pick), `n_candidates` (most common N). The best-of-k
curves (k = 1..N) of pointwise scores are the report's (rmorch.suites.bestofn.pool_curve), not repeated here.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from rmorch.core.errors import DataError
from rmorch.suites import register_suite
from rmorch.suites.base import Suite, SuiteScore, item_mean, require_str
from rmorch.suites.bestofn import item_gold, top_pick_gold
from rmorch.suites.files import Record
from rmorch.suites.gsm8k_answer import extract_answer
from rmorch.suites.judging import Comparison, comparisons, judge_metrics, rating_scores

MODEL_SOLUTIONS_FILE = "example_model_solutions.jsonl"
SUBSET = "gsm8k"


def verdict_gold(base: Comparison | None, gold: Sequence[float]) -> float:
    """Credit of a base-order verdict: the gold of the named candidate; unparsed: the mean gold; error or no row: 0."""
    if base is None or base.error is not None:
        return 0.0
    if base.ok and base.verdict is not None and 0 <= base.verdict < len(gold):
        return float(gold[base.verdict])
    return float(np.mean(gold))


def _candidate(rec: Record, key: str, value: dict[str, Any]) -> tuple[str, bool]:
    solution = value.get("solution")
    if not isinstance(solution, str):
        raise DataError(rec.source, f"expected a string solution, got {solution!r:.60}", row=rec.row,
                        field=f"{key}.solution")
    correct = value.get("is_correct")
    if not isinstance(correct, bool):
        raise DataError(rec.source, f"expected true or false, got {correct!r:.60}", row=rec.row,
                        field=f"{key}.is_correct")
    return solution, correct


def _item_id(rec: Record) -> str:
    value = rec.data.get("id")
    if value is None:
        return str(rec.row - 1)  # jsonl rows are 1-based line numbers: line 1 is problem 0
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise DataError(rec.source, f"expected an integer or non-empty string id, got {value!r:.40}", row=rec.row,
                        field="id")
    return str(value)


@register_suite
class Gsm8kBestOfN(Suite):
    name = "gsm8k-bon"
    version = "1"
    hub_id = None
    description = ("GSM8K best-of-N pools (the paper's 4 model solutions, or `rmorch generate` samples): expected "
                   "gold of the top-scored candidate")

    def local_files(self, files: list[str]) -> list[str]:
        # A directory holding the model solutions: only that file, not test.jsonl beside it (it has no candidates).
        solutions = [f for f in files if os.path.basename(f) == MODEL_SOLUTIONS_FILE and os.path.isfile(f)]
        return solutions or files

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        for rec in records:
            question = require_str(rec, "question")
            keys = [k for k, v in rec.data.items() if isinstance(v, dict)]
            if len(keys) < 2:
                raise DataError(rec.source, f"expected at least 2 candidate solutions (objects with solution and "
                                f"is_correct), found {len(keys)}", row=rec.row, field="question")
            pairs = [_candidate(rec, k, rec.data[k]) for k in keys]
            truth = rec.data.get("ground_truth")
            if truth is not None and not isinstance(truth, str):
                raise DataError(rec.source, f"expected a string, got {type(truth).__name__}", row=rec.row,
                                field="ground_truth")
            meta = {k: v for k, v in rec.data.items() if k not in keys and k != "question"}
            meta.update(keys=keys, reference=extract_answer(truth) if truth else None)
            yield {
                "suite": self.name,
                "subset": SUBSET,
                "item_id": _item_id(rec),
                "prompt": [{"role": "user", "content": question}],
                "candidates": [solution for solution, _ in pairs],
                "correct": [k for k, (_, ok) in enumerate(pairs) if ok],
                "gold": [1.0 if ok else 0.0 for _, ok in pairs],
                "language": "en",
                "meta": meta,
                "_record": rec,
            }

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        golds = item_gold(items)
        comps = comparisons(items, results)
        scores, bad = rating_scores(items, results)  # ratings: unparsed -1; errors and missing: NaN
        credit: list[float] = []
        flags: list[bool] = []
        for i, gold in enumerate(golds):
            if comps[i]:
                base = comps[i].get(0)
                credit.append(verdict_gold(base, gold))
                flags.append(base is None or base.error is not None)
            else:
                credit.append(0.0 if bad[i] else top_pick_gold(scores[i], gold))
                flags.append(bad[i])
        final = float(np.mean(credit)) if credit else math.nan
        extra: dict[str, Any] = {
            "oracle": float(np.mean([max(g) for g in golds])) if golds else math.nan,
            "random": float(np.mean([np.mean(g) for g in golds])) if golds else math.nan,
            "n_candidates": Counter(len(g) for g in golds).most_common(1)[0][0] if golds else 0,
        }
        return SuiteScore(
            score=final,
            subsets={SUBSET: final},
            n_items=len(credit),
            n_errors=sum(flags),
            extra=extra,
            judge=judge_metrics(items, results, official=final),
            item_credits=credit,
        )

    def combine_subsets(self, means: dict[str, float], counts: dict[str, int]) -> tuple[float, dict[str, float]]:
        return item_mean(means, counts), {}
