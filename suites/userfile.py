"""`kind: file`: the user's own preference data, from a local or remote (http/https) jsonl, json, parquet or csv file
(or a local directory of them), with a column mapping. Spec:

    suites:
      - name: my-prefs            # free: the suite's name in items, results and the leaderboard
        kind: file
        data: path/or/https://url/prefs.jsonl
        columns: {prompt: question, chosen: good, rejected: bad}           # form 1: chosen/rejected
      - name: my-ab
        kind: file
        data: ab.csv
        columns: {prompt: q, response_a: a, response_b: b, label: winner}  # form 2: A/B with a label column
        a_wins: "A"               # the label value meaning response_a is preferred; any other value: response_b
      - name: my-nway
        kind: file
        data: pools.parquet
        columns: {prompt: q, candidates: responses, correct: best}       # form 3: N candidates, correct index
                                                                         # (an int or a list of ints)
Every form also takes `subset: COLUMN` (per-subset accuracies; default: one subset "all") and `id: COLUMN` (default:
the row number; with a directory of files, "FILE:ROW"). The prompt column holds a string or a list of
{role, content} messages. A missing or null label is an error naming file, row and field.

Metric: accuracy. Reward models: an item is correct iff its best-scoring correct candidate scores strictly above
every other (incorrect) candidate (pairwise: chosen > rejected; a tie is wrong). Generative judges: the official
judge credit (rmorch.suites.judging.official_credits: base-order verdict 1 / 0 / chance if unparsed; ratings as
RewardBench v1 for pairs, best-of-n for more). Per subset: the mean credit; overall score = the mean over ITEMS
(not over subsets), as `extra["overall"]` says.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rmorch.core.errors import DataError, SpecError, UserError
from rmorch.suites import register_suite
from rmorch.suites.base import (
    Suite,
    SuiteOptions,
    SuiteScore,
    candidate_scores,
    item_mean,
    plain,
    require_messages,
    require_str,
    subset_means,
)
from rmorch.suites.files import EXTENSIONS, Record, data_files, read_file
from rmorch.suites.judging import judge_metrics, official_credits, pairwise_rating_credit, rating_credit

FORMS: dict[str, tuple[str, ...]] = {  # form -> required column keys
    "chosen/rejected": ("prompt", "chosen", "rejected"),
    "response_a/response_b/label": ("prompt", "response_a", "response_b", "label"),
    "candidates/correct": ("prompt", "candidates", "correct"),
}
OPTIONAL_COLUMNS = ("subset", "id")
COLUMN_KEYS = tuple(dict.fromkeys(k for keys in FORMS.values() for k in keys)) + OPTIONAL_COLUMNS
DEFAULT_SUBSET = "all"


@dataclass(frozen=True)
class FileOptions(SuiteOptions):
    columns: Any = None  # {key: column name in the file}; keys: COLUMN_KEYS (see the module docstring)
    a_wins: Any = None  # response_a/response_b/label form: the label value meaning response_a is preferred

    def __post_init__(self) -> None:
        if self.columns is None:  # a bare instance (scoring needs no options); a spec entry must give columns
            return
        if not isinstance(self.columns, dict) or not self.columns:
            raise SpecError("columns", f"expected a mapping of keys to column names, got {self.columns!r:.60}")
        for k, v in self.columns.items():
            if k not in COLUMN_KEYS:
                hint = " (a_wins goes beside `columns`, not inside)" if k == "a_wins" else ""
                raise SpecError(f"columns.{k}", f"unknown column key{hint}; known: {', '.join(COLUMN_KEYS)}")
            if not isinstance(v, str) or not v:
                raise SpecError(f"columns.{k}", f"expected a column name, got {v!r:.60}")
        form = self.form
        if form == "response_a/response_b/label":
            if self.a_wins is None:
                raise SpecError("a_wins", "the response_a/response_b/label form needs `a_wins: VALUE` (the label "
                                          "value meaning response_a is preferred)")
        elif self.a_wins is not None:
            raise SpecError("a_wins", "only the response_a/response_b/label form has a label")

    @property
    def form(self) -> str:
        """Which of FORMS the mapping uses; a SpecError unless exactly one, complete."""
        given = set(self.columns) - set(OPTIONAL_COLUMNS)
        for form, keys in FORMS.items():
            if given == set(keys):
                return form
        best = max(FORMS, key=lambda f: len(given & set(FORMS[f])))
        missing = [k for k in FORMS[best] if k not in given]
        extra = sorted(given - set(FORMS[best]))
        what = []
        if missing:
            what.append(f"missing {missing}")
        if extra:
            what.append(f"{extra} do not belong to it")
        forms = "; ".join("{" + ", ".join(keys) + "}" for keys in FORMS.values())
        raise SpecError("columns", f"not a complete column mapping of the {best} form ({', '.join(what)}); "
                                   f"the forms are: {forms} (each plus optional subset, id)")


@register_suite
class FileSuite(Suite):
    name = "file"
    version = "1"
    Options = FileOptions
    description = "your own data (`kind: file`, `data: PATH or URL`, `columns: {...}`): accuracy, per subset"
    _several_files = False  # set by `records`

    # ---- loading -------------------------------------------------------------------------------------------
    def records(self, data: str | None, split: str | None) -> Iterator[Record]:
        self._require_columns()
        if not data:
            raise SpecError(f"suites.{self.name}.data", "a file suite needs `data: PATH or URL`")
        path = fetch_remote(data) if _is_url(data) else data
        files = data_files(path)
        self._several_files = len(files) > 1  # default ids then name the file: "FILE:ROW"
        columns = self.options.columns
        for file in files:
            first = True
            for rec in read_file(file):
                if first:  # the mapping must name columns the file has (checked on its first record)
                    absent = [(k, c) for k, c in columns.items() if c not in rec.data]
                    if absent:
                        raise DataError(data if len(files) == 1 else file,
                                        f"the column mapping names columns the file does not have "
                                        f"({', '.join(f'{k}: {c}' for k, c in absent)}); "
                                        f"its columns: {', '.join(map(str, rec.data))}", row=rec.row,
                                        field=absent[0][1])
                    first = False
                yield rec

    def _require_columns(self) -> None:
        if self.options.columns is None:
            raise SpecError(f"suites.{self.name}.columns", "a file suite needs `columns: {...}` (see `rmorch ls`)")

    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        self._require_columns()
        cols = self.options.columns
        form = self.options.form
        for rec in records:
            if form == "chosen/rejected":
                candidates = [require_str(rec, cols["chosen"]), require_str(rec, cols["rejected"])]
                correct = [0]
            elif form == "response_a/response_b/label":
                candidates = [require_str(rec, cols["response_a"]), require_str(rec, cols["response_b"])]
                correct = [0 if _label_is(_label(rec, cols["label"]), self.options.a_wins) else 1]
            else:
                candidates = _candidates(rec, cols["candidates"])
                correct = _correct(rec, cols["correct"], len(candidates))
            if "id" in cols:
                item_id = str(_given(rec, cols["id"], "id"))
            elif self._several_files:
                item_id = f"{os.path.basename(rec.source)}:{rec.row}"
            else:
                item_id = str(rec.row)
            subset = str(_given(rec, cols["subset"], "subset")) if "subset" in cols else DEFAULT_SUBSET
            yield {
                "suite": self.name,
                "subset": subset,
                "item_id": item_id,
                "prompt": require_messages(rec, cols["prompt"], allow_str=True),
                "candidates": candidates,
                "correct": correct,
                "meta": {"source": rec.source, "row": rec.row},
                "_record": rec,
            }

    # ---- scoring -------------------------------------------------------------------------------------------
    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        credit, bad = official_credits(items, results, pointwise=lambda s: math.nan, ratings=_rating_credit)
        # Reward models (the NaN sentinel above): the best correct candidate strictly above every incorrect one.
        scores, _ = candidate_scores(items, results)
        for i, (row, good) in enumerate(zip(scores, items.column("correct").to_pylist())):
            if math.isnan(credit[i]):
                credit[i] = pointwise_credit(row, good)
        subsets = subset_means(items.column("subset").to_pylist(), credit)
        overall = sum(credit) / len(credit) if credit else math.nan
        return SuiteScore(
            score=overall,
            subsets=subsets,
            n_items=len(credit),
            n_errors=sum(bad),
            extra={"overall": "mean over items"},
            judge=judge_metrics(items, results, official=overall),
            item_credits=credit,
        )

    def combine_subsets(self, means: dict[str, float], counts: dict[str, int]) -> tuple[float, dict[str, float]]:
        return item_mean(means, counts), {}


def pointwise_credit(scores: list[float], correct: list[int]) -> float:
    """1.0 iff the best correct candidate scores strictly above every incorrect one (NaN anywhere: wrong)."""
    if any(math.isnan(s) for s in scores):
        return 0.0
    best = max(scores[k] for k in correct)
    others = [s for k, s in enumerate(scores) if k not in correct]
    return 1.0 if all(best > s for s in others) else 0.0


def _rating_credit(ratings, correct_index: int = 0) -> float:
    if len(ratings) == 2:
        return pairwise_rating_credit(ratings, correct_index)
    return rating_credit(ratings, correct_index)


# ---- field readers (DataError naming file, row and field) --------------------------------------------------


def _given(rec: Record, column: str, what: str) -> Any:
    """A value that must be there: not null, not a blank string."""
    value = rec.data.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(rec.source, f"missing or empty {what}", row=rec.row, field=column)
    return value


def _label(rec: Record, column: str) -> Any:
    value = rec.data.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip()):
        raise DataError(rec.source, "missing or null label", row=rec.row, field=column)
    return value


def _label_is(value: Any, a_wins: Any) -> bool:
    """Label equality across file types: a csv label is text ("1"), the spec value may be a number (1)."""
    if value == a_wins and type(value) is type(a_wins):
        return True
    return str(value).strip() == str(a_wins).strip()


def _maybe_json(value: Any) -> Any:
    """csv cells are text: a list or number column arrives as its JSON spelling."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return plain(value)


def _candidates(rec: Record, column: str) -> list[str]:
    if column not in rec.data:
        raise DataError(rec.source, "missing field", row=rec.row, field=column)
    value = _maybe_json(rec.data[column])
    if not isinstance(value, list) or len(value) < 2:
        raise DataError(rec.source, f"expected a list of at least 2 response strings, got {value!r:.80}",
                        row=rec.row, field=column)
    for k, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise DataError(rec.source, f"candidate {k} is not a non-empty string", row=rec.row, field=column)
    return list(value)


def _correct(rec: Record, column: str, n: int) -> list[int]:
    value = _maybe_json(rec.data.get(column))
    if value is None:
        raise DataError(rec.source, "missing or null correct index", row=rec.row, field=column)
    indices = value if isinstance(value, list) else [value]
    out = []
    for v in indices:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise DataError(rec.source, f"expected an index or a list of indices, got {value!r:.60}",
                            row=rec.row, field=column)
        if not 0 <= v < n:
            raise DataError(rec.source, f"index {v} is out of range for {n} candidates", row=rec.row, field=column)
        out.append(v)
    if not out or len(set(out)) == n:
        raise DataError(rec.source, "needs at least one correct and one incorrect candidate", row=rec.row,
                        field=column)
    return sorted(set(out))


# ---- remote files --------------------------------------------------------------------------------------------


def _is_url(data: str) -> bool:
    return urllib.parse.urlparse(data).scheme in ("http", "https")


def fetch_remote(url: str) -> str:
    """Download an http(s) data file once into ~/.cache/rmorch/files (keyed by the URL) and return its path."""
    name = os.path.basename(urllib.parse.urlparse(url).path)
    if not name.endswith(EXTENSIONS):
        raise DataError(url, f"cannot tell the file type from the URL; it must end in one of {', '.join(EXTENSIONS)}")
    cache = os.path.join(os.path.expanduser(os.environ.get("RMORCH_CACHE", "~/.cache/rmorch")), "files",
                         hashlib.sha256(url.encode()).hexdigest()[:16])
    path = os.path.join(cache, name)
    if os.path.exists(path):
        return path
    os.makedirs(cache, exist_ok=True)
    tmp = path + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    except OSError as e:  # URLError and HTTPError are OSErrors
        raise UserError(f"{url}: cannot download: {e}") from None
    os.replace(tmp, path)
    return path
