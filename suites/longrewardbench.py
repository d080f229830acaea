"""Long-RewardBench, `LCM-Lab/LongRewardBench`: long-context (4K-128K) pairwise and best-of-N reward items.

Sources followed (read, not copied), github.com/LCM-Lab/Long-RM:
- evaluate/evaluating/longreward_bench/preprocess.py: one jsonl per task (Cite, Code, ICL, LongQA, Math, Safety,
  Summ; hub configs of the same names, split `train`); the task name is the FILE name. The judged text is
  `prompt_template` (a list of {role, content} messages that carries the long context and the question); a
  discriminative RM scores `prompt_template + [{"role": "assistant", "content": response}]`. `tasktype` is
  "PairWise" (responses `chosen`, `rejected`) or "BestOfN" (responses `candidates`, listed best first: the gold
  rank of a candidate is its index). `subtype` ("same"/other for pairs; "2"/"3"/"4" for best-of-N) and
  `ctx_length_for_length` ("4k".."128k") label the breakdowns.
- evaluate/evaluating/longreward_bench/utils/prompt.py `extract_judgement(..., is_disrm=True)`: scores sorted
  descending give each presented response a predicted rank.
- evaluate/evaluating/longreward_bench/evaluator.py `evaluate`: an item's result = share of positions whose predicted
  rank equals the gold rank (pairs: 1 or 0; best-of-N: fractional); columns = per-task accuracy over PAIRWISE items,
  "Same."/"Diff." (pairwise subtype == "same" / other), "PairWise Avg." (item mean over pairs), "Rank2/3/4" (best-of-N
  by subtype), "Rank Avg." (item mean over best-of-N), pairwise accuracy per context length, and "AVG." = item mean
  over ALL items (the headline number, `score` here).
- dataset card (hub README `dataset_info`): fields id, prompt_template, question, source, chosen, rejected, subtask,
  chosen_model, rejected_model, ctx_length_for_length, ctx_length_for_words, length, words_count, task, tasktype,
  subtype, candidates_model, candidates, candidates_score.

Canonical items: prompt = `prompt_template` (the long context is already in it, so `context` stays empty);
candidates = [chosen, rejected] (pairs) or `candidates` (best-of-N, gold order); correct = [0] (the best);
gold = `candidates_score` when it has one value per candidate; subset = "<tasktype>/<task>"; meta keeps task,
tasktype, subtype, ctx_length, question, source, models.

Ties: the official code breaks tied scores by the (randomly shuffled) presented position through a stable sort.
Here a candidate is placed correctly only if no other candidate has the same score and exactly `index` others
score strictly higher; so a tied pair is wrong, as in RewardBench. Errors and missing scores make an item 0.
Generative judges: a verdict credits 1 if it names the best candidate (1/n if unparsed; rmorch.suites.judging); ratings
are ranked like scores.

Truncation is the model's policy, not the suite's: classifiers cut inputs to `max_length` from `truncation_side`,
judges shorten prompts to `max_model_len`; every result row records n_tokens, truncated, truncation_side and
max_length, so the share of truncated long-context rows is visible per model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from rmorch.core.errors import DataError
from rmorch.suites import register_suite
from rmorch.suites.base import (
    Suite,
    SuiteScore,
    optional_fields,
    plain,
    require_messages,
    require_str,
    require_str_list,
    subset_means,
)
from rmorch.suites.files import Record, read_hub
from rmorch.suites.judging import judge_metrics, official_credits

TASKS = ("LongQA", "Summ", "Safety", "ICL", "Cite", "Code", "Math")  # the official column order
_TASK_BY_LOWER = {t.lower(): t for t in TASKS}
TASKTYPES = ("PairWise", "BestOfN")
CTX_LENGTHS = ("4k", "8k", "16k", "32k", "64k", "128k")


def ranking_credit(scores: Sequence[float]) -> float:
    """Official per-item result from pointwise scores, candidates in gold order (index = gold rank): the share of
    candidates whose predicted rank (by descending score) equals their index. A candidate tied with another is never
    correctly placed; any NaN (error, missing) makes the item 0."""
    if any(math.isnan(s) for s in scores):
        return 0.0
    n = len(scores)
    hits = 0
    for i, s in enumerate(scores):
        if sum(1 for t in scores if t == s) == 1 and sum(1 for t in scores if t > s) == i:
            hits += 1
    return hits / n


def long_aggregate(tasks: list[str], tasktypes: list[str], subtypes: list[str | None], ctx: list[str | None],
                   credits: list[float]) -> dict[str, float]:
    """The official results table (evaluator.py) over the items present: task columns (pairwise accuracy),
    Same., Diff., PairWise Avg., Rank2-4, Rank Avg., context-length columns (pairwise), AVG. Columns without items
    are left out (the official code writes 0 for them)."""
    def mean(vals: list[float]) -> float | None:
        return sum(vals) / len(vals) if vals else None

    rows = list(zip(tasks, tasktypes, subtypes, ctx, credits))
    pw = [r for r in rows if r[1] == "PairWise"]
    bon = [r for r in rows if r[1] == "BestOfN"]
    table: dict[str, float | None] = {}
    for t in TASKS:
        table[t] = mean([r[4] for r in pw if r[0] == t])
    table["Same."] = mean([r[4] for r in pw if str(r[2]) == "same"])
    table["Diff."] = mean([r[4] for r in pw if str(r[2]) != "same"])
    table["PairWise Avg."] = mean([r[4] for r in pw])
    for k in (2, 3, 4):
        table[f"Rank{k}"] = mean([r[4] for r in bon if str(r[2]) == str(k)])
    table["Rank Avg."] = mean([r[4] for r in bon])
    for c in CTX_LENGTHS:
        table[c] = mean([r[4] for r in pw if r[3] == c])
    table["AVG."] = mean(credits)
    return {k: v for k, v in table.items() if v is not None}


def _task(rec: Record) -> str:
    explicit = rec.data.get("_task")  # set by `records` for hub rows (one config per task)
    if isinstance(explicit, str) and explicit in TASKS:
        return explicit
    stem = os.path.basename(rec.source).split(".")[0].lower()
    if stem in _TASK_BY_LOWER:
        return _TASK_BY_LOWER[stem]
    value = rec.data.get("task")
    if isinstance(value, str) and value.strip().lower() in _TASK_BY_LOWER:
        return _TASK_BY_LOWER[value.strip().lower()]
    raise DataError(rec.source, f"cannot tell the task: the file name is not one of {', '.join(TASKS)} and neither "
                    f"is `task` ({value!r})", row=rec.row, field="task")


def _gold(rec: Record, value: Any) -> float:
    """One candidates_score: a finite number (a bool, text or null would silently mis-rank the candidates)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(rec.source, f"expected finite numbers, got {value!r:.40}", row=rec.row,
                        field="candidates_score")
    return float(value)


def _opt_str(rec: Record, name: str) -> str | None:
    v = rec.data.get(name)
    return None if v is None else str(v)


@register_suite
class LongRewardBench(Suite):
    name = "long-rewardbench"
    version = "1"
    hub_id = "LCM-Lab/LongRewardBench"
    hub_split = "train"
    description = "Long-RewardBench: long-context pairwise and best-of-N items, 7 tasks (official ranking credit)"

    def hub_records(self, split: str) -> Iterator[Record]:
        for task in TASKS:  # one hub config per task
            for rec in read_hub(self.hub_id, split, name=task):
                yield Record(f"{rec.source}:{task}", rec.row, {**rec.data, "_task": task})

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        for rec in records:
            task = _task(rec)
            tasktype = rec.data.get("tasktype") or "PairWise"  # the official preprocess: no tasktype = a pair
            if tasktype not in TASKTYPES:
                raise DataError(rec.source, f"unknown tasktype {tasktype!r} (expected PairWise or BestOfN)",
                                row=rec.row, field="tasktype")
            prompt = require_messages(rec, "prompt_template")
            gold = None
            if tasktype == "BestOfN":
                candidates = require_str_list(rec, "candidates")
                if len(candidates) < 2:
                    raise DataError(rec.source, "best-of-N needs at least 2 candidates", row=rec.row,
                                    field="candidates")
                scores = plain(rec.data.get("candidates_score"))
                if isinstance(scores, list) and len(scores) == len(candidates):
                    gold = [_gold(rec, s) for s in scores]
            else:
                candidates = [require_str(rec, "chosen"), require_str(rec, "rejected")]
            rid = rec.data.get("id")
            meta: dict[str, Any] = {
                "task": task,
                "tasktype": tasktype,
                "subtype": _opt_str(rec, "subtype"),
                "ctx_length": _opt_str(rec, "ctx_length_for_length"),
                "row": rec.row,
            }
            meta.update(optional_fields(rec, ("id", "question", "source", "subtask", "chosen_model", "rejected_model",
                                              "candidates_model", "length", "words_count", "ctx_length_for_words")))
            yield {
                "suite": self.name,
                "subset": f"{tasktype}/{task}",
                "item_id": f"{task}/{tasktype}/{rid if rid is not None else rec.row}",
                "prompt": prompt,
                "candidates": candidates,
                "correct": [0],
                "language": "en",
                "context": None,
                "gold": gold,
                "meta": meta,
                "_record": rec,
            }

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad = official_credits(items, results, pointwise=ranking_credit,
                                       ratings=lambda r, _c: ranking_credit(r))
        metas = [json.loads(m) for m in items.column("meta").to_pylist()]
        table = long_aggregate([m["task"] for m in metas], [m["tasktype"] for m in metas],
                               [m.get("subtype") for m in metas], [m.get("ctx_length") for m in metas], credit)
        sections = {k: table[k] for k in ("PairWise Avg.", "Rank Avg.") if k in table}
        return SuiteScore(
            score=table.get("AVG.", float("nan")),
            sections=sections,
            subsets=subset_means(items.column("subset").to_pylist(), credit),
            n_items=len(credit),
            n_errors=sum(bad),
            extra={"official_table": table},
            judge=judge_metrics(items, results, official=table.get("AVG.")),
        )
