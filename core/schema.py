"""The two canonical Arrow schemas of rmorch: items (what is measured) and results (what a model said).

This module is the one place they are defined and documented. Suites produce item tables, actors produce result
tables, the store keeps both, and every metric is a pure function of the two.

Items: one row per comparison item.
    suite        registry name of the suite ("rewardbench")
    subset       the suite's own subset name ("alpacaeval-easy", "Ties")
    item_id      unique within the suite. RewardBench v1 ids repeat across subsets, so its loader uses "subset/id".
    prompt       the conversation before the responses: a list of {role, content} messages
    candidates   the responses to compare (pairwise: 2; RewardBench 2: 4; Ties: several)
    correct      indices into candidates of the correct (preferred) ones. Pairwise: [0]; RewardBench 2: [0]
    language     optional language code
    context      optional extra material: a list of {kind, content}; kind is "document", "image" (content is a path
                 or URI) or "text" (long context)
    gold         optional gold quality per candidate (best-of-N pools: correctness 0/1 or a real-valued score)
    meta         optional JSON object (as a string) with anything else the suite keeps (source models, ids, ...)

Results: one row per scored unit.
    unit_key      content key of the work unit (shard) that produced the row; see rmorch.orchestrator.plan.units
    model         the model's name in the spec
    suite, subset, item_id   which item
    candidate     index of the scored candidate (pointwise scores); null for comparisons
    order         for comparisons: the presented order, as indices into candidates; null for pointwise scores
    permutation   for comparisons: which of the item's presented orders this is (0 = the item's seeded base order,
                  the one the official number uses; see rmorch.core.permutations); null for pointwise scores
    score         the scalar reward (pointwise) or null
    scores        optional vector of per-objective scores (multi-objective reward models)
    verdict       for comparisons: index into candidates of the winner the model chose; null if unparsed
    probs         probability verdicts of generative judges (`verdict: logprobs`): comparisons, the judge's
                  probability of choosing each candidate (indexed like candidates, normalised over the labels
                  shown); ratings, the probability of each rating 1..10 (then `score` is the expected rating);
                  null for text verdicts and other kinds
    raw_output    for generative judges: the text the model produced
    parsed        for generative judges: whether a verdict (comparisons) or a rating (pointwise judge scores, then
                  `score` is the rating; null score when not parsed) could be parsed; null for non-generative kinds
    error         error text if this unit failed (then score/verdict are null); null on success
    n_tokens      input tokens the model saw (after truncation); null where not applicable
    truncated     whether the input was truncated to max_length
    settings_hash hash of the model's settings that affect scores (ModelSpec.settings_hash: its spec keys)
    identity      the result's identity: a hash of the settings hash, the model's provenance (kind version, model,
                  adapter and template files' fingerprints, library versions, hardware class) and the seed; see
                  rmorch.orchestrator.plan.provenance. The one notion of "the same model": resume (unit keys), the
                  score cache and the report reuse or read rows of the model's current identity only. Null in rows of
                  rmorch versions before it (their units are computed again).
    content_key   hash of what the model was shown (rmorch.actors.base.content_key); null for kinds never cached
    cached        true when the outcome was reused from an identical request of the same identity
                  (an earlier run, another suite or permutation, or a duplicate in the same unit) instead of
                  being computed again; see rmorch.orchestrator.plan.score_cache
    backend, dtype, max_length, truncation_side, chat_template, seed
                  the inference settings that produced the row
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
CONTEXT_PART = pa.struct([("kind", pa.string()), ("content", pa.string())])

ITEM_SCHEMA = pa.schema(
    [
        pa.field("suite", pa.string(), nullable=False),
        pa.field("subset", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("prompt", pa.list_(MESSAGE), nullable=False),
        pa.field("candidates", pa.list_(pa.string()), nullable=False),
        pa.field("correct", pa.list_(pa.int32()), nullable=False),
        pa.field("language", pa.string()),
        pa.field("context", pa.list_(CONTEXT_PART)),
        pa.field("gold", pa.list_(pa.float64())),
        pa.field("meta", pa.string()),
    ]
)

# What every metric reads of the items (rmorch.orchestrator.report.compute): ITEM_SCHEMA without the texts (prompt, context,
# candidates), with `n_candidates` and `candidate_chars` (characters of each candidate) in place of the candidates.
# rmorch.orchestrator.plan.items.scoring_view makes it from an item table.
SCORING_SCHEMA = pa.schema(
    [f for f in ITEM_SCHEMA if f.name not in ("prompt", "candidates", "context")]
    + [pa.field("n_candidates", pa.int32(), nullable=False), pa.field("candidate_chars", pa.list_(pa.int32()))]
)

RESULT_SCHEMA = pa.schema(
    [
        pa.field("unit_key", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("suite", pa.string(), nullable=False),
        pa.field("subset", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("candidate", pa.int32()),
        pa.field("order", pa.list_(pa.int32())),
        pa.field("permutation", pa.int32()),
        pa.field("score", pa.float64()),
        pa.field("scores", pa.list_(pa.float64())),
        pa.field("verdict", pa.int32()),
        pa.field("probs", pa.list_(pa.float64())),
        pa.field("raw_output", pa.string()),
        pa.field("parsed", pa.bool_()),
        pa.field("error", pa.string()),
        pa.field("n_tokens", pa.int32()),
        pa.field("truncated", pa.bool_()),
        pa.field("settings_hash", pa.string(), nullable=False),
        pa.field("identity", pa.string()),
        pa.field("content_key", pa.string()),
        pa.field("cached", pa.bool_()),
        pa.field("backend", pa.string()),
        pa.field("dtype", pa.string()),
        pa.field("max_length", pa.int32()),
        pa.field("truncation_side", pa.string()),
        pa.field("chat_template", pa.string()),
        pa.field("seed", pa.int64()),
    ]
)


def items_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Build an item table from row dicts (missing optional fields become null; meta dicts become JSON)."""
    cols: dict[str, list[Any]] = {f.name: [] for f in ITEM_SCHEMA}
    for row in rows:
        for name, values in cols.items():
            value = row.get(name)
            if name == "meta" and value is not None and not isinstance(value, str):
                value = json.dumps(value, sort_keys=True, ensure_ascii=False)
            values.append(value)
    return pa.table(cols, schema=ITEM_SCHEMA)


def candidate_counts(items: pa.Table) -> list[int]:
    """Candidates per item, from Arrow (the texts never become Python strings); item tables without texts
    (SCORING_SCHEMA) carry the counts."""
    if "n_candidates" in items.column_names:
        return items.column("n_candidates").to_pylist()
    return pc.list_value_length(items.column("candidates")).to_pylist()


def results_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """Build a result table from row dicts; unknown keys are an error, missing optional ones null."""
    rows = list(rows)
    names = set(RESULT_SCHEMA.names)
    for row in rows:
        extra = set(row) - names
        if extra:
            raise KeyError(f"result row has fields outside RESULT_SCHEMA: {sorted(extra)}")
    return pa.table({f.name: [r.get(f.name) for r in rows] for f in RESULT_SCHEMA}, schema=RESULT_SCHEMA)


def empty_results() -> pa.Table:
    return RESULT_SCHEMA.empty_table()
