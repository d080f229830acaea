"""JudgeBench (ICLR 2025), `ScalerLab/JudgeBench`: hard response pairs with a verifiable answer, two responses of one
strong model to the same question, labelled by which one is correct. Split = the response model: 350 pairs of
`gpt-4o-2024-05-13` (the paper's headline split, the default) or 270 of `claude-3-5-sonnet-20240620` (hub splits
`gpt` and `claude`; a local copy is the repository's data/*.jsonl, e.g. ../shared/data/judgebench).

Spec: `{name: judgebench, data: ../shared/data/judgebench, split: claude-3-5-sonnet-20240620}`. The rows of the data
(a file or a directory of them) whose `response_model` is the split are the suite; the others are left out, so a
directory holding both splits' files serves both.

Item: prompt = the question, candidates = [response_A, response_B], correct = [0] for label "A>B", [1] for "B>A";
subset = the row's `source` (mmlu-pro-<subject>, livebench-reasoning, livebench-math, livecodebench); item_id =
`pair_id`.

Official score (JudgeBench utils/metrics.py, at ScalerLab/JudgeBench e2c52c2; ../shared/notes/scoring.md): every pair
is judged twice, in the given order and with A and B swapped, the second decision mapped back. Each decision adds
+1 if it names the correct response, -1 if it names the other, 0 otherwise (a tie, no verdict); a pair is correct
iff the sum is > 0 (both right, or one right beside a tie or no verdict; one right and one wrong is not correct).
Score = correct pairs / all pairs; sections Knowledge (mmlu-pro-*), Reasoning (livebench-reasoning), Math
(livebench-math), Coding (livecodebench), each over its pairs; the overall is over pairs, not a mean of sections;
subsets = each source's share.

Who decides, per pair:
- generative judges (comparison rows): their verdict in each of the two orders. A judge must be shown both
  (`permutations: both`, the pairwise default; the plan refuses fewer: `min_orders`). A verdict naming a candidate is
  a decision; a tie (`[[A=B]]` under `template: arena_hard`: read, `parsed` true, no winner) and an unparsed verdict
  count 0, as JudgeBench's None and "A=B" do.
- reward models (pointwise scores) score each response once; both orders follow from the same two scores, as
  JudgeBench decides for reward models: in each order the first-shown response wins iff its score is strictly
  higher, else the second-shown one. So an exact tie names B in one order and A in the other: sum 0, not correct.
- judges that rate (protocol rating): their ratings as scores, by the reward-model rule (unparsed ratings -1).
An item with an error row, a missing row or a judge's missing order is wrong (rmorch's rule everywhere, counted in
`n_errors`; JudgeBench itself counts a failed judgment as 0, so one right decision beside a failed one would count
there). `extra`: the pairs by their sum (correct > 0, even = 0, incorrect < 0) and the decisions by kind.
Judges get the usual judge metrics beside the official number (rmorch.suites.judging.judge_metrics).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pyarrow as pa

from rmorch.core.errors import DataError, UserError
from rmorch.suites import register_suite
from rmorch.suites.base import Suite, SuiteScore, item_mean, optional_fields, require_str, subset_means
from rmorch.suites.files import Record, data_files, read_file, read_hub
from rmorch.suites.judging import comparisons, judge_metrics, rating_scores

# split (the response model) -> its split on the hub
SPLITS: dict[str, str] = {"gpt-4o-2024-05-13": "gpt", "claude-3-5-sonnet-20240620": "claude"}
DEFAULT_SPLIT = "gpt-4o-2024-05-13"
SECTIONS = ("Knowledge", "Reasoning", "Math", "Coding")
_EXACT_SOURCES = {"livebench-reasoning": "Reasoning", "livebench-math": "Math", "livecodebench": "Coding"}
LABELS = {"A>B": 0, "B>A": 1}  # the label -> the index of the correct candidate
ORIGINAL, SWAPPED = (0, 1), (1, 0)  # the two presented orders


def section_of(source: str) -> str | None:
    """The JudgeBench category of a `source`: Knowledge for mmlu-pro-*, else by name; None for an unknown source."""
    if source.startswith("mmlu-pro-") and len(source) > len("mmlu-pro-"):
        return "Knowledge"
    return _EXACT_SOURCES.get(source)


def pair_sum(decisions: Sequence[int | None], correct: int) -> int:
    """JudgeBench's count for one pair: per decision (the index of the candidate it names, or None for a tie or no
    verdict), +1 if it names the correct candidate, -1 if the other, 0 for None. The pair is correct iff > 0."""
    return sum(0 if d is None else 1 if d == correct else -1 for d in decisions)


def score_decisions(scores: Sequence[float]) -> tuple[int, int]:
    """A reward model's decisions from its two scores, in the original order and in the swapped one (as candidate
    indices): in each order the response shown first wins iff its score is strictly higher, else the other one."""
    first = 0 if scores[0] > scores[1] else 1  # shown A = candidate 0, B = candidate 1
    second = 1 if scores[1] > scores[0] else 0  # shown A = candidate 1, B = candidate 0
    return first, second


def judgebench_credits(items: pa.Table, results: pa.Table) -> tuple[list[float], list[bool], dict[str, Any]]:
    """Per item (in `items` order): JudgeBench's credit (1 if the pair is correct, else 0) and whether the item is
    errored or missing; and the counts of `extra` (pairs by their sum, decisions by kind)."""
    correct = items.column("correct").to_pylist()
    comps = comparisons(items, results)
    scores, bad = rating_scores(items, results)  # reward models' scores, judges' ratings (unparsed -1); NaN: error
    credits: list[float] = []
    flags: list[bool] = []
    pairs = Counter({"correct": 0, "even": 0, "incorrect": 0})
    kinds = Counter({"right": 0, "wrong": 0, "tie": 0, "unparsed": 0})
    for i, good in enumerate(correct):
        target = good[0] if good else -1
        if comps[i]:
            by_order: dict[tuple[int, ...], Any] = {}
            for _, c in sorted(comps[i].items()):
                by_order.setdefault(c.order, c)
            shown = [by_order.get(ORIGINAL), by_order.get(SWAPPED)]
            failed = any(c is None or c.error is not None for c in shown)
            decisions: list[int | None] = []
            for c in shown:
                if c is None or c.error is not None:
                    continue
                if c.ok:
                    decisions.append(c.verdict)
                    kinds["right" if c.verdict == target else "wrong"] += 1
                else:
                    decisions.append(None)
                    kinds["tie" if c.parsed else "unparsed"] += 1
        else:
            row = scores[i]
            failed = bad[i] or len(row) != 2
            decisions = [] if failed else list(score_decisions(row))
            for d in decisions:
                kinds["right" if d == target else "wrong"] += 1
        total = pair_sum(decisions, target)
        if not failed:
            pairs["correct" if total > 0 else "incorrect" if total < 0 else "even"] += 1
        credits.append(1.0 if not failed and total > 0 else 0.0)
        flags.append(failed)
    return credits, flags, {"pairs": dict(pairs), "decisions": dict(kinds)}


@register_suite
class JudgeBench(Suite):
    name = "judgebench"
    version = "1"
    hub_id = "ScalerLab/JudgeBench"
    hub_split = "gpt"
    min_orders: ClassVar[int] = 2  # every pair in both orders: the official metric needs both decisions
    description = ("JudgeBench: 350 (GPT-4o) / 270 (Claude) hard verifiable pairs, both orders, "
                   "Knowledge/Reasoning/Math/Coding")

    def records(self, data: str | None, split: str | None) -> Iterator[Record]:
        model = split or DEFAULT_SPLIT
        if data is None:
            if model not in SPLITS:
                raise UserError(f"suite {self.name}: split '{model}' is none of the hub's response models "
                                f"({', '.join(SPLITS)})")
            rows: Iterator[Record] = read_hub(self.hub_id or "", SPLITS[model])
        else:
            rows = (rec for file in data_files(data) for rec in read_file(file))
        others: Counter[str] = Counter()
        kept = 0
        for rec in rows:
            found = require_str(rec, "response_model")
            if found == model:
                kept += 1
                yield rec
            else:
                others[found] += 1
        if not kept:
            present = ", ".join(f"{m} ({n} pairs)" for m, n in sorted(others.items())) or "none"
            raise DataError(data or f"hub:{self.hub_id}", f"no pairs of response model '{model}' (the suite's "
                            f"`split`; default {DEFAULT_SPLIT}); the data holds: {present}", field="response_model")

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        for rec in records:
            source = require_str(rec, "source")
            if section_of(source) is None:
                raise DataError(rec.source, f"unknown JudgeBench source '{source:.60}' (expected mmlu-pro-<subject>, "
                                f"{', '.join(_EXACT_SOURCES)})", row=rec.row, field="source")
            label = require_str(rec, "label")
            if label not in LABELS:
                raise DataError(rec.source, f"expected label 'A>B' or 'B>A', got {label!r:.40}", row=rec.row,
                                field="label")
            yield {
                "suite": self.name,
                "subset": source,
                "item_id": require_str(rec, "pair_id"),
                "prompt": [{"role": "user", "content": require_str(rec, "question")}],
                "candidates": [require_str(rec, "response_A"), require_str(rec, "response_B")],
                "correct": [LABELS[label]],
                "language": "en",
                "meta": optional_fields(rec, ("original_id", "response_model", "label")),
                "_record": rec,
            }

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad, extra = judgebench_credits(items, results)
        subsets = items.column("subset").to_pylist()
        acc = subset_means(subsets, credit)
        final, sections = self.combine_subsets(acc, Counter(subsets))
        return SuiteScore(
            score=final,
            sections=sections,
            subsets=acc,
            n_items=len(credit),
            n_errors=sum(bad),
            extra=extra,
            judge=judge_metrics(items, results, official=final),
            item_credits=credit,
        )

    def combine_subsets(self, means: dict[str, float], counts: dict[str, int]) -> tuple[float, dict[str, float]]:
        """Sections and the overall score are over pairs: subset means weighted by their pair counts."""
        sections: dict[str, float] = {}
        for section in SECTIONS:
            members = {s: m for s, m in means.items() if section_of(s) == section}
            if members:
                sections[section] = item_mean(members, counts)
        return (item_mean(means, counts) if means else math.nan), sections
