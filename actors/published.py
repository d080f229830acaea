"""`published`: replay per-item scores published in the RewardBench results layout, or a JudgeBench run's scores or
decisions, as if a model produced them.

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

JudgeBench outputs (ScalerLab/JudgeBench `outputs/*.jsonl`, what its run_judge.py writes; recognised from the
content: JSON lines with `pair_id` and `judgments`), for the `judgebench` suite: every pair with `judge_name` and
`judgments`, a list of two judgments (the pair as given, then with A and B swapped), each `{judgment: {...},
decision: "A>B" / "B>A" / "A=B" / another mark's text / null}`, or null where the run failed on that order. Items
match by `pair_id`; each pair's response_A / response_B must be the item's candidates (else the request is an error
row: another version of the data). Two ways in, chosen from the whole file:
- reward models (`judgment.scores` = [score of the response shown first, of the second], in both orders the same
  two scores swapped, each decision what JudgeBench's rule gives them: "A>B" iff the first score is strictly
  higher, else "B>A"): imported as each response's score, candidate 0 = response_A. The model then scores
  pointwise like any reward model, and the suite derives both orders' decisions from the two scores, which are
  the file's decisions (a tie included).
- anything else (arena_hard and every other prompted judge, or a reward-model file whose decisions do not follow
  from its scores): imported as the decisions themselves. The model then compares, in both orders
  (`permutations: both`): the order (A, B) gets the first judgment, (B, A) the second, "A>B" naming the response
  shown first and "B>A" the other; "A=B" (or "B=A") is a tie, a verdict read that names no winner; any other
  decision, a null one or a null judgment is no verdict (as JudgeBench, they count 0). The judge's reply
  (`judgment.response`) is kept as the row's raw output. A judge's file holding one judgment per pair (run_judge.py
  --single_game) has no decision for the swapped order: those requests are error rows (a reward model's single
  judgment holds both scores, so its file replays whole).
So the file's decisions, scored by the judgebench suite, give JudgeBench's own metric, and the run sits on one
leaderboard with live judges (with the judge metrics, for imported decisions). `model` is the judgments'
`judge_model`, `model_type` the `judge_name`.

Requests carry the item id but not the suite, so a published model scores any item whose id the files hold: run
it on the suites its files come from (other suites' items get error rows unless their ids happen to collide).
A result's identity covers the files' content (rmorch.orchestrator.plan.provenance): a file changed in place is
scored again.
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from rmorch.actors import register_kind
from rmorch.actors.base import (
    ActorContext,
    Capabilities,
    CompareRequest,
    InferenceSettings,
    ModelKind,
    Presentation,
    Request,
    ScoreOutcome,
    ScoreRequest,
)
from rmorch.core.errors import DataError, SpecError

V1_SCORE_KEYS = ("scores_chosen", "scores_rejected")  # candidate 0 and 1 of a RewardBench v1 pair
V2_SCORES_KEY = "scores"  # one list per item, candidates in dataset order
JUDGEBENCH_KEYS = ("pair_id", "judgments")  # what makes a file a JudgeBench outputs file
JUDGEBENCH_WINS = {"A>B": 0, "B>A": 1}  # a decision -> the position (in the order shown) it names
JUDGEBENCH_TIES = ("A=B", "B=A")


@dataclass(frozen=True)
class PublishedConfig:
    # a per-item scores file (.json / .jsonl) or a directory of them (searched recursively), or a JudgeBench outputs
    # file (the format is recognised from the content)
    path: str

    def __post_init__(self) -> None:
        # Absolute, so that replicas find the file whatever their working directory; checked before Ray starts.
        path = os.path.abspath(os.path.expanduser(self.path))
        if not os.path.exists(path):
            raise SpecError("path", f"'{self.path}' does not exist")
        object.__setattr__(self, "path", path)


@dataclass(frozen=True)
class PublishedJudgment:
    """One judgment of a JudgeBench outputs file: its decision as published, in the order shown ("A>B": the response
    shown first wins), the judge's reply where the file has it, and the reward-model scores as shown."""

    decision: str | None
    text: str | None = None
    scores: tuple[float, float] | None = None


@dataclass(frozen=True)
class PublishedScores:
    """Per rmorch item_id, the published score of each candidate (None where the file has none).

    JudgeBench files imported as decisions (see the module docstring) fill `decisions` instead: per pair, its
    judgments in the order (A, B) and then (B, A), None for a judgment the run did not produce. `responses`: per pair
    of a JudgeBench file, (response_A, response_B), checked against the items."""

    scores: dict[str, list[float | None]]
    files: tuple[str, ...]
    model: str | None = None
    model_type: str | None = None
    chat_template: str | None = None
    layout: str = "rewardbench"  # rewardbench | judgebench
    decisions: dict[str, tuple[PublishedJudgment | None, ...]] | None = None
    responses: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def compares(self) -> bool:
        """Whether the run is replayed as comparisons (decisions), not as pointwise scores."""
        return self.decisions is not None


def load_published(path: str) -> PublishedScores:
    """Read one scores file or every .json / .jsonl file under a directory; duplicate items across files and files
    of different models are refused (a directory of several models' files is a mistake, not a merge), and so are
    JudgeBench outputs beside RewardBench scores files."""
    files = _score_files(path)
    scores: dict[str, list[float | None]] = {}
    where: dict[str, tuple[str, int]] = {}
    header: dict[str, tuple[str, str]] = {}  # model / model_type / chat_template -> (value, file)
    layouts: dict[str, str] = {}  # layout -> the first file of it
    pairs: dict[str, tuple[PublishedJudgment | None, ...]] = {}
    responses: dict[str, tuple[str, str]] = {}
    for file in files:
        columns = _read_columns(file)
        layout = "judgebench" if all(k in columns for k in JUDGEBENCH_KEYS) else "rewardbench"
        layouts.setdefault(layout, file)
        if len(layouts) > 1:
            other = next(k for k in layouts if k != layout)
            raise DataError(file, f"is a {layout} file but {layouts[other]} is a {other} file: point `path` at one "
                                  f"run's files")
        if layout == "judgebench":
            if isinstance(columns["pair_id"], str):  # JSON lines of one pair read as one object
                columns = {k: [v] for k, v in columns.items()}
            columns = _judgebench_header(file, columns)
        for key in ("model", "model_type", "chat_template"):
            value = columns.get(key)
            if isinstance(value, str) and key not in header:
                header[key] = (value, file)
            elif key == "model" and isinstance(value, str) and header["model"][0] != value:
                raise DataError(file, f"is for model '{value}' but {header['model'][1]} is for "
                                      f"'{header['model'][0]}': point `path` at one model's files", field="model")
        rows = _judgebench_pairs(file, columns) if layout == "judgebench" else _item_scores(file, columns)
        for row, item_id, found in rows:
            if item_id in where:
                other, other_row = where[item_id]
                raise DataError(file, f"item '{item_id}' is published twice (also {other} row {other_row})",
                                row=row, field="pair_id" if layout == "judgebench" else "id")
            where[item_id] = (file, row)
            if layout == "judgebench":
                judgments, texts = found
                pairs[item_id] = judgments
                if texts is not None:
                    responses[item_id] = texts
            else:
                scores[item_id] = found
    head = tuple(header[k][0] if k in header else None for k in ("model", "model_type", "chat_template"))
    if "judgebench" not in layouts:
        return PublishedScores(scores, tuple(files), *head)
    if all(_follows_from_scores(j) for j in pairs.values()):  # a reward model: its scores, once per response
        scores = {pid: list(j[0].scores) for pid, j in pairs.items() if j[0] is not None and j[0].scores}
        return PublishedScores(scores, tuple(files), *head, layout="judgebench", responses=responses)
    return PublishedScores({}, tuple(files), *head, layout="judgebench", decisions=pairs, responses=responses)


def _judgebench_header(file: str, columns: dict[str, Any]) -> dict[str, Any]:
    """The columns of a JudgeBench file with the header fields of the RewardBench layout: model = the judgments'
    `judge_model`, model_type = `judge_name` (one of each per file)."""
    models = {j["judgment"]["judge_model"] for js in columns.get("judgments") or [] if isinstance(js, list)
              for j in js if isinstance(j, dict) and isinstance(j.get("judgment"), dict)
              and isinstance(j["judgment"].get("judge_model"), str)}
    names = {n for n in columns.get("judge_name") or [] if isinstance(n, str)}
    for key, values in (("judge_model", models), ("judge_name", names)):
        if len(values) > 1:
            raise DataError(file, f"holds the judgments of several judges ({', '.join(sorted(values))}): one "
                                  f"run per file", field=key)
    return {**columns, "model": next(iter(models), None), "model_type": next(iter(names), None)}


def _judgebench_pairs(file: str, columns: dict[str, Any]
                      ) -> list[tuple[int, str, tuple[tuple[PublishedJudgment | None, ...], tuple[str, str] | None]]]:
    """(1-based row, pair_id, (its judgments in the orders (A, B) then (B, A), its two responses)) per row."""
    ids, judgments = columns["pair_id"], columns["judgments"]
    if not isinstance(ids, list) or not isinstance(judgments, list) or len(ids) != len(judgments):
        raise DataError(file, "expected one `pair_id` and one `judgments` list per pair", field="judgments")
    texts_a, texts_b = (columns.get(k) if isinstance(columns.get(k), list) and len(columns[k]) == len(ids)
                        else [None] * len(ids) for k in ("response_A", "response_B"))
    out = []
    for i, (pair_id, listed) in enumerate(zip(ids, judgments)):
        row = i + 1
        if not isinstance(pair_id, str) or not pair_id:
            raise DataError(file, f"expected a pair id, got {pair_id!r:.40}", row=row, field="pair_id")
        if not isinstance(listed, list) or not 1 <= len(listed) <= 2:
            raise DataError(file, "expected a list of one or two judgments (the pair as given, then swapped), got "
                                  f"{listed!r:.60}", row=row, field="judgments")
        parsed = tuple(_judgment(file, row, j) for j in listed)
        a, b = texts_a[i], texts_b[i]
        out.append((row, pair_id, (parsed, (a, b) if isinstance(a, str) and isinstance(b, str) else None)))
    return out


def _judgment(file: str, row: int, value: Any) -> PublishedJudgment | None:
    if value is None:
        return None  # the run failed on this order (run_judge.py writes null)
    if not isinstance(value, dict):
        raise DataError(file, f"expected a judgment object or null, got {value!r:.60}", row=row, field="judgments")
    decision = value.get("decision")
    if decision is not None and not isinstance(decision, str):
        raise DataError(file, f"expected a decision text or null, got {decision!r:.40}", row=row, field="decision")
    inner = value.get("judgment")
    inner = inner if isinstance(inner, dict) else {}
    text = inner.get("response")
    raw = inner.get("scores")
    scores = None
    if raw is not None:
        if (not isinstance(raw, list) or len(raw) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)):
            raise DataError(file, f"expected two scores (A and B as shown), got {raw!r:.60}", row=row,
                            field="scores")
        scores = (float(raw[0]), float(raw[1]))
    return PublishedJudgment(decision, text if isinstance(text, str) and text else None, scores)


def _follows_from_scores(judgments: tuple[PublishedJudgment | None, ...]) -> bool:
    """Whether a pair's judgments are a reward model's: scores in every judgment, the second order's the first's
    swapped, and each decision the one JudgeBench's rule gives them ("A>B" iff the first shown scores higher)."""
    first = judgments[0]
    if first is None or first.scores is None:
        return False
    expected = [first.scores, first.scores[::-1]]
    for j, want in zip(judgments, expected):
        if j is None or j.scores is None or not all(_same(x, y) for x, y in zip(j.scores, want)):
            return False
        if j.decision != ("A>B" if j.scores[0] > j.scores[1] else "B>A"):
            return False
    return True


def _same(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


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


@functools.lru_cache(maxsize=32)
def _compares(path: str, stamp: tuple[tuple[str, int, int], ...]) -> bool:
    """Whether the run at `path` (its files as `stamp` says: name, mtime, size) replays as comparisons."""
    return load_published(path).compares


def _stamp(path: str) -> tuple[tuple[str, int, int], ...]:
    out = []
    for file in _score_files(path):
        st = os.stat(file)
        out.append((file, st.st_mtime_ns, st.st_size))
    return tuple(out)


@register_kind
class Published(ModelKind):
    """Scores = the published per-item scores of a RewardBench results file, or a JudgeBench run's scores or
    decisions (see the module docstring)."""

    kind = "published"
    cacheable = False  # scores are looked up by item id
    Config = PublishedConfig
    uses_gpu = False
    description = ("replay published per-item scores (RewardBench eval-set-scores layout) or a JudgeBench run's "
                   "outputs beside live models")

    @classmethod
    def capabilities(cls, config: PublishedConfig) -> Capabilities:
        return Capabilities(files=(config.path,))  # the scores' content is part of every result's identity

    @classmethod
    def presentation(cls, config: PublishedConfig) -> Presentation:
        """Pointwise scores; a JudgeBench run imported as decisions compares, in both orders. Known from the files'
        content (read once per version of them)."""
        return Presentation("pairwise", "both") if _compares(config.path, _stamp(config.path)) else Presentation()

    def __init__(self, config: PublishedConfig, ctx: ActorContext, name: str):
        super().__init__(config, ctx, name)
        self.published = load_published(config.path)

    def settings(self) -> InferenceSettings:
        return InferenceSettings(backend="published", chat_template=self.published.chat_template)

    def score(self, requests: list[Request]) -> list[ScoreOutcome]:
        return [self._decide(r) if isinstance(r, CompareRequest) else self._lookup(r) for r in requests]

    def _shown(self, item_id: str, order: tuple[int, ...], shown: tuple[str, ...]) -> str | None:
        """Why the item's responses are not those of the published pair (None where they are, or are unknown)."""
        texts = self.published.responses.get(item_id)
        if texts is None or tuple(texts[k] for k in order) == shown:
            return None
        return (f"published pair '{item_id}' in {self.config.path} holds other responses than the item (another "
                f"version of the data?)")

    def _decide(self, r: CompareRequest) -> ScoreOutcome:
        """A JudgeBench run's decision for this order: (A, B) the first judgment, (B, A) the second."""
        judgments = (self.published.decisions or {}).get(r.item_id)
        if judgments is None:
            return ScoreOutcome(error=f"no published judgment for pair '{r.item_id}' in {self.config.path}")
        if len(r.order) != 2 or tuple(r.order) not in ((0, 1), (1, 0)):
            return ScoreOutcome(error=f"a JudgeBench judgment compares two responses, not {len(r.order)}")
        mismatch = self._shown(r.item_id, tuple(r.order), r.responses)
        if mismatch is not None:
            return ScoreOutcome(error=mismatch)
        k = r.order[0]  # 0: as given, 1: swapped
        if k >= len(judgments):
            return ScoreOutcome(error=f"the published run judged pair '{r.item_id}' in its original order only")
        j = judgments[k]
        if j is None:
            return ScoreOutcome(raw_output="(no judgment: the published run failed on this order)", parsed=False)
        raw = j.text if j.text is not None else f"decision: {j.decision}"
        if j.decision in JUDGEBENCH_WINS:
            return ScoreOutcome(choice=JUDGEBENCH_WINS[j.decision], raw_output=raw, parsed=True)
        return ScoreOutcome(raw_output=raw, parsed=j.decision in JUDGEBENCH_TIES)  # a tie: read, no winner

    def _lookup(self, r: ScoreRequest) -> ScoreOutcome:
        mismatch = self._shown(r.item_id, (r.candidate,), (r.response,)) if r.candidate in (0, 1) else None
        if mismatch is not None:
            return ScoreOutcome(error=mismatch)
        item_scores = self.published.scores.get(r.item_id)
        if item_scores is None:
            return ScoreOutcome(error=f"no published score for item '{r.item_id}' in {self.config.path}")
        if r.candidate >= len(item_scores) or item_scores[r.candidate] is None:
            return ScoreOutcome(
                error=f"no published score for item '{r.item_id}' candidate {r.candidate} in {self.config.path}"
            )
        return ScoreOutcome(score=item_scores[r.candidate])  # a published NaN stays NaN: wrong, as officially
