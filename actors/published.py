"""`published`: replay per-item scores published in the RewardBench results layout, as if a model produced them.

The RewardBench leaderboards publish, per model, a per-item scores file (`eval-set-scores/<org>/<model>.json` in the
`allenai/reward-bench-results` and `allenai/reward-bench-2-results` datasets; rmorch writes the same layout with
rmorch.orchestrator.report.export). Pointing a `published` model at such a file (or a directory of them) puts those numbers on an
rmorch leaderboard beside live models, scored by the same official metric code, with no model and no accelerator.

A scores file is one JSON object of equal-length columns (what the official scripts write: a Hugging Face dataset's
`to_dict()`, plus scalar `model`, `model_type`, `chat_template`), or JSON lines with one such record per item:
- RewardBench v1 (scripts/run_rm.py, run_dpo.py): `id`, `subset`, `scores_chosen`, `scores_rejected`, `results`.
- RewardBench 2 (scripts/run_v2.py): `id`, `subset`, `scores` (one list per item: the chosen completions first,
  then the rejected ones, as the dataset lists them), `num_correct`, `results`.

How published rows map to rmorch items (`item_id`, see rmorch.core.schema):
- v1: `"<subset>/<id>"`, the id rmorch's rewardbench loader gives (v1 ids repeat across subsets); candidate 0 gets
  `scores_chosen`, candidate 1 `scores_rejected`. The prior preference sets (`pref-sets-scores/`) map the same way.
- v2: `"<id>"` (RewardBench 2 ids are unique, Ties ids keep their `ref:` / `tied:` prefix); candidate k gets
  `scores[k]`.
A score may also be a one-element list (`[x]`, as custom models' `tolist()` writes it). A request with no published
score (item absent, score null, candidate out of range) becomes an error row naming the item: it counts as wrong
and shows in `n_errors`, never silently dropped.

Files that carry no per-item scores are refused when the model loads: generative judges' files (only `results`,
the credit per item, which cannot be replayed as scores), `eval-set/` accuracy files, and v1 files without `id`
(run_dpo.py does not save ids, so its rows cannot be matched to items).

Requests carry the item id but not the suite, so a published model scores any item whose id the files hold: run
it on the suites its files come from (other suites' items get error rows unless their ids happen to collide).
A result's identity covers the files' content (rmorch.orchestrator.plan.provenance): a file changed in place is
scored again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from rmorch.actors import register_kind
from rmorch.actors.base import ActorContext, Capabilities, InferenceSettings, ModelKind, ScoreOutcome, ScoreRequest
from rmorch.core.errors import DataError, SpecError

V1_SCORE_KEYS = ("scores_chosen", "scores_rejected")  # candidate 0 and 1 of a RewardBench v1 pair
V2_SCORES_KEY = "scores"  # one list per item, candidates in dataset order


@dataclass(frozen=True)
class PublishedConfig:
    path: str  # a per-item scores file (.json / .jsonl) or a directory of them (searched recursively)

    def __post_init__(self) -> None:
        # Absolute, so that replicas find the file whatever their working directory; checked before Ray starts.
        path = os.path.abspath(os.path.expanduser(self.path))
        if not os.path.exists(path):
            raise SpecError("path", f"'{self.path}' does not exist")
        object.__setattr__(self, "path", path)


@dataclass(frozen=True)
class PublishedScores:
    """Per rmorch item_id, the published score of each candidate (None where the file has none)."""

    scores: dict[str, list[float | None]]
    files: tuple[str, ...]
    model: str | None = None
    model_type: str | None = None
    chat_template: str | None = None


def load_published(path: str) -> PublishedScores:
    """Read one scores file or every .json / .jsonl file under a directory; duplicate items across files and files
    of different models are refused (a directory of several models' files is a mistake, not a merge)."""
    files = _score_files(path)
    scores: dict[str, list[float | None]] = {}
    where: dict[str, tuple[str, int]] = {}
    header: dict[str, tuple[str, str]] = {}  # model / model_type / chat_template -> (value, file)
    for file in files:
        columns = _read_columns(file)
        for key in ("model", "model_type", "chat_template"):
            value = columns.get(key)
            if isinstance(value, str) and key not in header:
                header[key] = (value, file)
            elif key == "model" and isinstance(value, str) and header["model"][0] != value:
                raise DataError(file, f"is for model '{value}' but {header['model'][1]} is for "
                                      f"'{header['model'][0]}': point `path` at one model's files", field="model")
        for row, item_id, item_scores in _item_scores(file, columns):
            if item_id in where:
                other, other_row = where[item_id]
                raise DataError(file, f"item '{item_id}' is published twice (also {other} row {other_row})",
                                row=row, field="id")
            where[item_id] = (file, row)
            scores[item_id] = item_scores
    return PublishedScores(scores, tuple(files), *(header[k][0] if k in header else None
                                                   for k in ("model", "model_type", "chat_template")))


def _score_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    files = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(path)
        for name in names
        if name.endswith((".json", ".jsonl")) and not name.startswith(".")
    )
    if not files:
        raise DataError(path, "no .json or .jsonl scores files in this directory")
    return files


def _read_columns(file: str) -> dict[str, Any]:
    """The file as columns: a JSON object of lists (the official layout) or JSON lines of per-item records."""
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise DataError(file, "not UTF-8 text") from None
    except OSError as e:
        raise DataError(file, f"cannot read: {e.strerror or e}") from None
    if not text.strip():
        raise DataError(file, "empty file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return _records_to_columns(file, _json_lines(file, text))
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, list):
        return _records_to_columns(file, [(k + 1, r) for k, r in enumerate(doc)])
    raise DataError(file, "expected a JSON object of columns or JSON lines of records")


def _json_lines(file: str, text: str) -> list[tuple[int, Any]]:
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            raise DataError(file, f"invalid JSON: {e.msg}", row=n) from None
    return records


def _records_to_columns(file: str, records: list[tuple[int, Any]]) -> dict[str, Any]:
    columns: dict[str, list[Any]] = {}
    for k, (row, record) in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(file, "expected a JSON object per item", row=row)
        for name in set(columns) | set(record):
            columns.setdefault(name, [None] * k).append(record.get(name))
    # header fields repeat per record: keep them as scalars, as in the column layout
    return {name: (values[0] if name in ("model", "model_type", "chat_template") and values else values)
            for name, values in columns.items()}


def _item_scores(file: str, columns: dict[str, Any]) -> list[tuple[int, str, list[float | None]]]:
    """(1-based row, rmorch item_id, score per candidate) for every row of one file."""
    if V2_SCORES_KEY in columns:
        layout = "v2"
        needed = ("id", "subset", V2_SCORES_KEY)
    elif any(k in columns for k in V1_SCORE_KEYS):
        layout = "v1"
        needed = ("id", "subset", *V1_SCORE_KEYS)
    elif "results" in columns:
        raise DataError(file, "has per-item `results` but no scores (a generative judge's file?): only "
                              "scores_chosen/scores_rejected (v1) or scores (v2) can be replayed", field="scores")
    else:
        raise DataError(file, "no per-item scores: expected scores_chosen/scores_rejected (RewardBench v1) or "
                              "scores (RewardBench 2); an eval-set/ accuracy file has none", field="scores")
    for name in needed:
        if not isinstance(columns.get(name), list):
            why = " (run_dpo.py files carry no ids and cannot be matched)" if name == "id" else ""
            raise DataError(file, f"missing per-item column{why}", field=name)
    n = len(columns["id"])
    for name in needed:
        if len(columns[name]) != n:
            raise DataError(file, f"has {len(columns[name])} entries but `id` has {n}", field=name)
    out = []
    for i in range(n):
        row = i + 1
        item_id = _item_id(file, row, layout, columns["subset"][i], columns["id"][i])
        if layout == "v1":
            item_scores = [_score(file, row, key, columns[key][i]) for key in V1_SCORE_KEYS]
        else:
            raw = columns[V2_SCORES_KEY][i]
            if raw is None:
                item_scores = []
            elif isinstance(raw, list):
                item_scores = [_score(file, row, V2_SCORES_KEY, x) for x in raw]
            else:
                raise DataError(file, f"expected a list of scores, got {raw!r:.40}", row=row, field=V2_SCORES_KEY)
        out.append((row, item_id, item_scores))
    return out


def _item_id(file: str, row: int, layout: str, subset: Any, raw_id: Any) -> str:
    if not isinstance(subset, str) or not subset:
        raise DataError(file, f"expected a subset name, got {subset!r:.40}", row=row, field="subset")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, float, str)) or raw_id == "":
        raise DataError(file, f"expected an id, got {raw_id!r:.40}", row=row, field="id")
    if isinstance(raw_id, float):
        if not raw_id.is_integer():
            raise DataError(file, f"expected an integer id, got {raw_id!r}", row=row, field="id")
        raw_id = int(raw_id)  # pandas may have written an integer id as 30.0
    return f"{subset}/{raw_id}" if layout == "v1" else str(raw_id)


def _score(file: str, row: int, field: str, value: Any) -> float | None:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(file, f"expected a number, got {value!r:.40}", row=row, field=field)
    return float(value)


@register_kind
class Published(ModelKind):
    """Scores = the published per-item scores of a RewardBench results file (see the module docstring)."""

    kind = "published"
    cacheable = False  # scores are looked up by item id
    Config = PublishedConfig
    uses_gpu = False
    description = "replay published per-item scores (RewardBench eval-set-scores layout) beside live models"

    @classmethod
    def capabilities(cls, config: PublishedConfig) -> Capabilities:
        return Capabilities(files=(config.path,))  # the scores' content is part of every result's identity

    def __init__(self, config: PublishedConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        self.published = load_published(config.path)

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="published", chat_template=self.published.chat_template)

    def score(self, requests: list[ScoreRequest]) -> list[ScoreOutcome]:
        return [self._lookup(r) for r in requests]

    def _lookup(self, r: ScoreRequest) -> ScoreOutcome:
        item_scores = self.published.scores.get(r.item_id)
        if item_scores is None:
            return ScoreOutcome(error=f"no published score for item '{r.item_id}' in {self.config.path}")
        if r.candidate >= len(item_scores) or item_scores[r.candidate] is None:
            return ScoreOutcome(
                error=f"no published score for item '{r.item_id}' candidate {r.candidate} in {self.config.path}"
            )
        return ScoreOutcome(score=item_scores[r.candidate])  # a published NaN stays NaN: wrong, as officially
