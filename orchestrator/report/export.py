"""Export a sweep's results in the RewardBench results layout, so they can travel to the leaderboards.

The official scripts of allenai/reward-bench (scripts/run_rm.py, run_dpo.py, run_generative.py for v1; run_v2.py,
run_generative_v2.py for RewardBench 2) save two JSON files per model with rewardbench/utils.py `save_to_hub`
(`json.dumps(..., indent=4, sort_keys=True)`), into the datasets allenai/reward-bench-results (v1) and
allenai/reward-bench-2-results (v2). This module writes the same files, under DEST (default OUT/export/reward-bench):

    reward-bench-results/eval-set/<org>/<model>.json           v1 accuracy per subset
    reward-bench-results/eval-set-scores/<org>/<model>.json    v1 per-item scores
    reward-bench-results/pref-sets[-scores]/<org>/<model>.json the prior preference sets, when the sweep had them
    reward-bench-2-results/eval-set/<org>/<model>.json         v2 score per subset (Ties: its overall score)
    reward-bench-2-results/eval-set-scores/<org>/<model>.json  v2 per-item score lists
A suite declared under its own name with one of these kinds (`{name: rb-sample, kind: rewardbench}`) gets folders
of its own, `reward-bench-results-rb-sample/...`, so that two RewardBench suites of one sweep never overwrite.

Accuracy file: `model`, `model_type`, `chat_template` (`ref_model` too for DPO), then one key per subset holding
the number rmorch's leaderboard reports for it (the same official code computes both).
Per-item file: a JSON object of equal-length columns (a dataset's `to_dict()`) plus scalar `model`, `model_type`,
`chat_template` (generative judges: no `chat_template`, as their scripts write it):
- v1: `id` (the dataset id), `subset`, `results` (the official per-item credit: 1 / 0 for reward models; 1 / 0 / 0.5
  for judges, whose files have no `scores_chosen` / `scores_rejected`), `scores_chosen`, `scores_rejected`.
- v2: `id`, `subset`, `num_correct`, `scores` (per item, one score per completion, chosen ones first; a judge's
  ratings where it rated, -1 for an unparsed rating, else null), `results` (credit 1/k for a top tie, else 0;
  four-way judges 1 / 0 / 0.25; null for Ties items, whose score is computed over the whole subset, as the official
  `process_single_model` intends).
Differences from the official files, on purpose: the formatted conversation texts (`text_chosen`, `text_rejected`,
`text`) are not written (rmorch does not keep the chat-templated strings); an errored or missing score is null and
its item's result 0 (counted wrong, as on rmorch's leaderboard); a NaN subset score is null (JSON has no NaN).

The model name becomes `<org>/<name>` (org "rmorch" unless the rmorch name already has one): the official files
are always under an org directory, and `model` is the path without `.json`. Ensembles are exported like models.
Item ids map back as actors/published.py documents, so an exported scores file replays into a leaderboard with a
`published` model.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rmorch.actors import KINDS
from rmorch.orchestrator.report.compute import LeaderboardEntry, build_leaderboard, current_entries, current_rows
from rmorch.orchestrator.report.ensembles import ensemble_results
from rmorch.orchestrator.spec.sweep_spec import EnsembleSpec
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import RunRecord, read_run
from rmorch.suites.base import candidate_scores
from rmorch.suites.judging import is_judge, official_credits, pairwise_rating_credit, rated_items, rating_scores
from rmorch.suites.rewardbench import PRIOR_SETS, pairwise_correct
from rmorch.suites.rewardbench2 import best_of_n_credit, is_ties

V1_REPO = "reward-bench-results"
V2_REPO = "reward-bench-2-results"
DEFAULT_ORG = "rmorch"

# rmorch kind -> the model_type the official scripts write; kinds without an official counterpart (baselines,
# density ratios, published replays, ensembles) are models with their own scoring code: "Custom Classifier".
CUSTOM = "Custom Classifier"  # reward-bench's model_type of models that are no kind of its own
GENERATIVE = "Generative RM"  # the generative judges' model_type (whose files carry no chat_template)


@dataclass(frozen=True)
class ExportModel:
    """One model of the sweep as the official files name and describe it."""

    name: str  # rmorch name
    model: str  # official name: org/name
    model_type: str
    ref_model: str | None = None  # DPO only


def export_reward_bench(out_dir: str, dest: str | None = None, *, org: str = DEFAULT_ORG) -> list[str]:
    """Write the RewardBench results files of every model (and ensemble) of the sweep in `out_dir` for the
    RewardBench suites it ran (`rewardbench`, `rewardbench2`, or suites declared with those kinds); return the
    paths written. Raises UserError if `out_dir` is not a sweep's output."""
    store = ResultStore(out_dir)
    board = {(e.model, e.suite): e for e in build_leaderboard(store)}  # UserError without run.json
    run = read_run(store) or RunRecord()
    target = ResultStore(dest or store.path("export", "reward-bench"))  # a local dir or a URI, like OUT
    written: list[str] = []
    for suite in run.suites:
        kind = run.suite_kinds.get(suite, suite)
        if kind not in ("rewardbench", "rewardbench2"):
            continue
        items = store.read_scoring_items(suite)
        for model, results in _suite_results(store, run, suite, items, org).items():
            entry = board.get((model.name, suite))
            if entry is None:
                continue
            if kind == "rewardbench":
                files = _v1_files(model, items, results, entry)
            else:
                files = {"eval-set": _accuracy(model, entry, results, list(entry.subsets)),
                         "eval-set-scores": _v2_scores(model, items, results)}
            repo = V1_REPO if kind == "rewardbench" else V2_REPO
            if suite != kind:  # a suite declared with this kind under its own name: files of its own
                repo = f"{repo}-{_model_path(suite).replace('/', '%2F')}"
            for folder, doc in files.items():
                rel = f"{repo}/{folder}/{_model_path(model.model)}.json"
                target.write_text(rel, _dumps(doc))
                written.append(target.path(rel))
    return written


# ---- which rows: the same selection as the leaderboard ------------------------------------------------------


def _suite_results(store: ResultStore, run: RunRecord, suite: str, items: pa.Table,
                   org: str) -> dict[ExportModel, pa.Table]:
    """Per model with rows for this suite: its rows of the current identity (as rmorch.orchestrator.report.compute selects them),
    then the ensembles whose members all have rows."""
    entries = defaultdict(list)
    for e in store.manifest():
        if e.suite == suite:
            entries[e.model].append(e)
    out: dict[ExportModel, pa.Table] = {}
    by_name: dict[str, pa.Table] = {}
    for name, info in run.models.items():
        if not entries.get(name):
            continue
        rows = current_rows(store.read_results(current_entries(entries[name], info)[0]), info)
        by_name[name] = rows
        out[_describe(name, org, info.kind, info.settings)] = rows
    for name, data in run.ensembles.items():
        spec = EnsembleSpec(name, tuple(data["members"]), data["method"], data["penalty"])
        if all(m in by_name for m in spec.members):
            out[_describe(name, org, None, {})] = ensemble_results(spec, items, by_name, suite)
    return out


def _describe(name: str, org: str, kind: str | None, settings: dict[str, Any]) -> ExportModel:
    """How the official files name and describe a model: its kind says (`ModelKind.reward_bench_identity`); an
    ensemble, or a kind this installation does not have, is a custom classifier."""
    model = name if "/" in name else f"{org}/{name}"
    cls = KINDS.find(kind) if kind else None
    model_type, ref_model = cls.reward_bench_identity(settings) if cls is not None else (CUSTOM, None)
    return ExportModel(name, model, model_type, ref_model)


# ---- the files ------------------------------------------------------------------------------------------------


def _v1_files(model: ExportModel, items: pa.Table, results: pa.Table, entry: LeaderboardEntry) -> dict[str, Any]:
    """eval-set + eval-set-scores for the core subsets; pref-sets + pref-sets-scores for the prior sets."""
    subsets = items.column("subset").to_pylist()
    files: dict[str, Any] = {}
    for folder, keep in (("eval-set", lambda s: s not in PRIOR_SETS), ("pref-sets", lambda s: s in PRIOR_SETS)):
        mask = pa.array([keep(s) for s in subsets])
        part = items.filter(mask)
        if part.num_rows == 0:
            continue
        names = list(dict.fromkeys(part.column("subset").to_pylist()))
        files[folder] = _accuracy(model, entry, results, names)
        files[f"{folder}-scores"] = _v1_scores(model, part, results)
    return files


def _accuracy(model: ExportModel, entry: LeaderboardEntry, results: pa.Table, subsets: list[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": model.model, "model_type": model.model_type,
                           "chat_template": _chat_template(results)}
    if model.ref_model is not None:
        doc["ref_model"] = model.ref_model
    doc.update({s: _score(entry.subsets.get(s, math.nan)) for s in subsets})
    return doc


def _v1_scores(model: ExportModel, items: pa.Table, results: pa.Table) -> dict[str, Any]:
    credits, _ = official_credits(items, results, pointwise=lambda s: pairwise_correct([s])[0],
                                  ratings=pairwise_rating_credit)
    doc: dict[str, Any] = {"id": _v1_ids(items), "subset": items.column("subset").to_pylist(),
                           "results": [_credit(c) for c in credits]}
    if not is_judge(results):
        scores, _ = candidate_scores(items, results)
        doc["scores_chosen"] = [_score(s[0]) for s in scores]
        doc["scores_rejected"] = [_score(s[1]) for s in scores]
    return _with_header(doc, model, results)


def _v2_scores(model: ExportModel, items: pa.Table, results: pa.Table) -> dict[str, Any]:
    credits, _ = official_credits(items, results, pointwise=lambda s: best_of_n_credit(s, 0))
    scores, _ = rating_scores(items, results)  # reward models: their scores; judges: ratings, unparsed -1
    subsets = items.column("subset").to_pylist()
    judge = is_judge(results)
    rated = rated_items(items, results)
    doc = {
        "id": items.column("item_id").to_pylist(),
        "subset": subsets,
        "num_correct": [len(c) for c in items.column("correct").to_pylist()],
        "scores": [[_score(x) for x in s] if (rated[i] or not judge) else None for i, s in enumerate(scores)],
        "results": [None if is_ties(s) else _credit(c) for s, c in zip(subsets, credits)],
    }
    return _with_header(doc, model, results)


def _with_header(doc: dict[str, Any], model: ExportModel, results: pa.Table) -> dict[str, Any]:
    doc.update(model=model.model, model_type=model.model_type)
    if model.model_type != GENERATIVE:  # the generative scripts write no chat_template here
        doc["chat_template"] = _chat_template(results)
    return doc


# ---- values ---------------------------------------------------------------------------------------------------


def _v1_ids(items: pa.Table) -> list[Any]:
    """The dataset's own ids (kept in the item meta by the rewardbench loader), else the item_id after 'subset/'."""
    ids = []
    for item_id, subset, meta in zip(items.column("item_id").to_pylist(), items.column("subset").to_pylist(),
                                     items.column("meta").to_pylist()):
        original = json.loads(meta).get("id") if meta else None
        ids.append(original if original is not None else item_id.removeprefix(f"{subset}/"))
    return ids


def _chat_template(results: pa.Table) -> str | None:
    values = [v for v in results.column("chat_template").unique().to_pylist() if v is not None]
    return values[0] if values else None


def _score(x: float | None) -> float | None:
    """JSON-safe: NaN (an error or a missing score) -> null."""
    return None if x is None or math.isnan(x) else float(x)


def _credit(x: float) -> float | int:
    """A per-item credit: 1 and 0 as ints (as the official results columns hold them), fractions as floats."""
    return int(x) if x in (0.0, 1.0) else float(x)


def _model_path(model: str) -> str:
    """The official `<org>/<model>` path, each segment safe as a file name."""
    segments = []
    for seg in model.split("/"):
        seg = urllib.parse.quote(seg, safe="-_.+@ =,")
        segments.append(seg if seg not in ("", ".", "..") else seg.replace(".", "%2E") or "%20")
    return "/".join(segments)


def _dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=4, sort_keys=True, allow_nan=False, ensure_ascii=False)
