"""RAG-RewardBench, `jinzhuoran/RAG-RewardBench`: 1,485 chosen/rejected pairs over retrieved documents.

Sources followed (read, not copied):
- the hub dataset: files `Dataset/{helpful,reason,citation,harmless,abstain,conflict}.jsonl` (one default config,
  split `train`); rows carry `prompt` (the retrieved references), `question`, `chosen`, `reject`, `chosen_model`,
  `reject_model`, `subset` (and an `id` where present). Field names as read by public loaders of the dataset
  (e.g. gaze_query_rag's RAG-RewardBench runner: `row["prompt"]`, `row["question"]`, `row["chosen"]`,
  `row["reject"]`, `row.get("subset")`); `rejected` is accepted as an alias of `reject`.
- the paper (arXiv 2412.13746, Table 2): six subsets -- Helpful: General (helpful), Reason (multi-hop reasoning),
  Citation (fine-grained citation); Harmless: General (harmless), Abstain (appropriate abstain), Conflict (conflict
  robustness). The four RAG scenarios are reason, citation, abstain and conflict; helpful and harmless are the
  general subsets the paper scores beside them.
- github.com/jinzhuoran/RAG-RewardBench holds only a README (no scoring code is published), so the aggregation is
  recovered from Table 2: a least-squares fit of its Overall column on the six subset accuracies of nine models
  gives weights summing to 1.000 and proportional to item counts (~267/294/363/155/219/186 = 1,485), and the
  Helpful/Harmless "Avg." columns fit item weights likewise. The unweighted mean of the six subsets misses the
  published Overall by up to 3.6 points. So: Helpful Avg., Harmless Avg. and Overall are ITEM-WEIGHTED accuracies.

Subsets: the scenario is taken from the data file name (`reason.jsonl` -> `reason`), else from the row's `subset`
field when that is one of the six names.

Prompt: the retrieved references are rendered into the single user turn, followed by the question (unless the
`prompt` text already contains it), so classifiers and judges all see the same prompt; the references and the
question are also kept in `meta` (`references`, `question`), not in `context` (which is for material NOT already in
the prompt).

Per item: correct iff score(chosen) > score(rejected), strictly (a tie is wrong; an error or missing score is
wrong). Generative judges (rmorch.suites.judging.official_credits): base-order verdict 1 / 0 / 0.5 unparsed; ratings by
RewardBench v1's pairwise rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from rmorch.core.errors import DataError
from rmorch.suites import register_suite
from rmorch.suites.base import Suite, SuiteScore, optional_fields, pairwise_credit, require_str, subset_means
from rmorch.suites.files import Record, read_hub
from rmorch.suites.judging import judge_metrics, official_credits, pairwise_rating_credit

SCENARIOS = ("helpful", "reason", "citation", "harmless", "abstain", "conflict")
SECTIONS: dict[str, tuple[str, ...]] = {
    "Helpful": ("helpful", "reason", "citation"),
    "Harmless": ("harmless", "abstain", "conflict"),
}
HUB_FILES = {s: f"Dataset/{s}.jsonl" for s in SCENARIOS}


def rag_aggregate(subsets: list[str], credits: list[float]) -> tuple[float, dict[str, float], dict[str, float]]:
    """(overall, sections, subset accuracies) from per-item credits: subsets are accuracies; sections and overall
    are item-weighted (the mean credit over all their items), as Table 2 of the paper computes them."""
    acc = subset_means(subsets, credits)
    sections: dict[str, float] = {}
    for name, members in SECTIONS.items():
        vals = [c for s, c in zip(subsets, credits) if s in members]
        if vals:
            sections[name] = sum(vals) / len(vals)
    overall = sum(credits) / len(credits) if credits else float("nan")
    return overall, sections, acc


def render_prompt(references: str, question: str) -> str:
    """The user turn: the retrieved references, then the question (once)."""
    if question.strip() and question.strip() in references:
        return references
    return f"{references.rstrip()}\n\nQuestion: {question.strip()}"


def _scenario(rec: Record) -> str:
    stem = os.path.basename(rec.source).split(".")[0].lower()
    if stem in SCENARIOS:
        return stem
    value = rec.data.get("subset")
    if isinstance(value, str) and value.strip().lower() in SCENARIOS:
        return value.strip().lower()
    raise DataError(
        rec.source,
        f"cannot tell the scenario: the file name is not one of {', '.join(SCENARIOS)} and neither is `subset` "
        f"({value!r})",
        row=rec.row,
        field="subset",
    )


@register_suite
class RAGRewardBench(Suite):
    name = "rag-rewardbench"
    version = "1"
    hub_id = "jinzhuoran/RAG-RewardBench"
    hub_split = "train"
    description = "RAG-RewardBench: 1,485 RAG preference pairs in 6 subsets (strict >, item-weighted overall)"

    def hub_records(self, split: str) -> Iterator[Record]:
        for path in HUB_FILES.values():  # one file per scenario: the file name stays in the records' source
            yield from read_hub(self.hub_id, split, data_files=path)

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        for rec in records:
            scenario = _scenario(rec)
            references = require_str(rec, "prompt")
            question = require_str(rec, "question")
            chosen = require_str(rec, "chosen")
            rejected = require_str(rec, "reject" if "reject" in rec.data or "rejected" not in rec.data else "rejected")
            rid = rec.data.get("id")
            meta = {
                "references": references,
                "question": question,
                "row": rec.row,
                **optional_fields(rec, ("id", "subset", "chosen_model", "reject_model", "rejected_model")),
            }
            yield {
                "suite": self.name,
                "subset": scenario,
                "item_id": f"{scenario}/{rid if rid is not None else rec.row}",
                "prompt": [{"role": "user", "content": render_prompt(references, question)}],
                "candidates": [chosen, rejected],
                "correct": [0],
                "language": "en",
                "context": None,
                "meta": meta,
                "_record": rec,
            }

    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad = official_credits(items, results, pointwise=pairwise_credit, ratings=pairwise_rating_credit)
        subsets = items.column("subset").to_pylist()
        overall, sections, acc = rag_aggregate(subsets, credit)
        ordered = {s: acc[s] for s in SCENARIOS if s in acc}
        return SuiteScore(
            score=overall,
            sections=sections,
            subsets=ordered,
            n_items=len(credit),
            n_errors=sum(bad),
            judge=judge_metrics(items, results, official=overall),
        )
