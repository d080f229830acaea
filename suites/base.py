"""What a suite is: a loader to the canonical item table and a pure metric over items and results.

Adding a benchmark is one file in this package: subclass `Suite`, decorate it with `@register_suite`, implement
`load_records` (or `load`) and `score`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rmorch.core.errors import DataError
from rmorch.core.schema import ITEM_SCHEMA, candidate_counts, items_table
from rmorch.suites.files import Record, data_files, read_file, read_hub

LOAD_BATCH_ROWS = 20_000  # items converted to Arrow at a time while a suite loads


@dataclass(frozen=True)
class SuiteOptions:
    """Suite-specific spec keys. Suites with extra keys subclass this (a frozen dataclass) and set `Options`."""


@dataclass
class SuiteScore:
    """The leaderboard numbers of one model on one suite. Scores are fractions in [0, 1].

    `judge`: for generative judges only, the metrics beside the official number (rmorch.suites.judging.judge_metrics).
    `item_credits`: per item (in items order), its credit, for suites whose numbers are a function of their subsets'
    mean credits (`Suite.combine_subsets`): the bootstrap then resamples credits instead of re-scoring tables."""

    score: float
    sections: dict[str, float] = field(default_factory=dict)
    subsets: dict[str, float] = field(default_factory=dict)
    n_items: int = 0
    n_errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None
    item_credits: list[float] | None = None


class Suite(ABC):
    """A benchmark. Subclasses set the class attributes and implement `load_records` and `score`."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"  # bump when loading or item content changes: it is part of every unit key
    hub_id: ClassVar[str | None] = None
    hub_split: ClassVar[str] = "test"
    Options: ClassVar[type[SuiteOptions]] = SuiteOptions
    description: ClassVar[str] = ""
    # the fewest presented orders a comparing judge must show each compared item in (JudgeBench: 2, its metric
    # judges every pair in both orders); the plan refuses a judge whose `permutations` give fewer
    min_orders: ClassVar[int] = 1

    def __init__(self, options: SuiteOptions | None = None):
        self.options = options if options is not None else self.Options()

    # ---- loading -------------------------------------------------------------------------------------------
    def records(self, data: str | None, split: str | None) -> Iterator[Record]:
        """Raw records with their provenance, from a local file or dir (the data files `local_files` keeps), or from
        the hub (`hub_records`)."""
        if data is not None:
            for file in self.local_files(data_files(data)):
                yield from read_file(file)
        elif self.hub_id is None:
            raise DataError(self.name, "this suite has no Hugging Face id: give its data with `data: PATH`")
        else:
            yield from self.hub_records(split or self.hub_split)

    def local_files(self, files: list[str]) -> list[str]:
        """Which of the data files at `data: PATH` (the file itself, or a directory's files, sorted) to read: all of
        them, unless a suite's directory also holds files that are not its data."""
        return files

    def hub_records(self, split: str) -> Iterator[Record]:
        """The records of `hub_id`'s default config, split `split`. Suites whose hub data is spread over several
        configs or files override this (local data is still read by `records`)."""
        yield from read_hub(self.hub_id, split)

    @abstractmethod
    def to_items(self, records: Iterator[Record]) -> Iterator[dict[str, Any]]:
        """Turn raw records into canonical item dicts (see rmorch.core.schema), raising DataError on bad input.

        Each dict also carries "_record": the Record it came from (for error messages; removed before storage)."""

    def load(self, data: str | None = None, split: str | None = None) -> pa.Table:
        """The suite's full canonical item table, validated: non-empty string responses, unique item ids."""
        return pa.concat_tables(list(self.load_batches(data, split))).combine_chunks()

    def load_batches(self, data: str | None = None, split: str | None = None) -> Iterator[pa.Table]:
        """`load` as consecutive item tables of LOAD_BATCH_ROWS items (a large suite never whole in memory); the
        checks are those of `load`, over all batches (a duplicate id in a later batch fails there)."""
        rows: list[dict[str, Any]] = []
        seen: dict[str, tuple[str, int]] = {}  # item id -> (source, row) where it was first seen
        n = 0
        for item, rec in self._located_items(data, split):
            prev = seen.get(item["item_id"])
            if prev is not None:
                raise DataError(rec.source, f"duplicate item key '{item['item_id']}' (first seen at "
                                            f"{Record(*prev, {}).where})", row=rec.row, field="id")
            seen[item["item_id"]] = (rec.source, rec.row)
            if item.get("meta") is not None and not isinstance(item["meta"], str):
                item["meta"] = meta_json(item["meta"])
            rows.append(item)
            if len(rows) == LOAD_BATCH_ROWS:  # Arrow as we go: a million items never live as Python dicts at once
                n += len(rows)
                yield items_table(rows)
                rows = []
        if rows:
            n += len(rows)
            yield items_table(rows)
        if not n:
            raise DataError(data or f"{self.hub_id}", "no items found")

    def _located_items(self, data: str | None, split: str | None) -> Iterator[tuple[dict[str, Any], Record]]:
        for item in self.to_items(self.records(data, split)):
            yield item, item.pop("_record")

    # ---- sampling ------------------------------------------------------------------------------------------
    def sample_group(self, item_id: str) -> str:
        """Items that must be kept or dropped together when sampling (e.g. RewardBench 2 Ties prompt pairs)."""
        return item_id

    def sample(self, items: pa.Table, limit_per_subset: int, seed: int) -> pa.Table:
        """A seeded sample of at most `limit_per_subset` groups per subset, in the original order."""
        rows = self.sample_rows(items.column("subset").to_pylist(), items.column("item_id").to_pylist(),
                                limit_per_subset, seed)
        return items.take(rows)

    def sample_rows(self, subsets: list[str], item_ids: list[str], limit_per_subset: int, seed: int) -> list[int]:
        """The rows `sample` keeps (ascending), from the items' subsets and ids alone."""
        keep: list[int] = []
        groups = [self.sample_group(i) for i in item_ids]
        by_subset: dict[str, dict[str, list[int]]] = {}
        for idx, (sub, grp) in enumerate(zip(subsets, groups)):
            by_subset.setdefault(sub, {}).setdefault(grp, []).append(idx)
        for sub in sorted(by_subset):
            grps = by_subset[sub]
            names = list(grps)
            if len(names) > limit_per_subset:
                rng = np.random.default_rng([seed, zlib.crc32(sub.encode())])
                names = [names[i] for i in sorted(rng.choice(len(names), limit_per_subset, replace=False))]
            for g in names:
                keep.extend(grps[g])
        return sorted(keep)

    # ---- scoring -------------------------------------------------------------------------------------------
    def always_rated(self, subset: str) -> bool:
        """Whether a generative judge rates this subset's candidates one by one even when it compares elsewhere
        (RewardBench 2 Ties: too many candidates to compare). Such items are never compared."""
        return False

    @abstractmethod
    def score(self, items: pa.Table, results: pa.Table) -> SuiteScore:
        """The official numbers of one model from its result rows for this suite's items. Pure: no I/O."""

    # ---- statistics (rmorch.orchestrator.report.stats) ------------------------------------------------------------------------
    def combine_subsets(self, means: dict[str, float], counts: dict[str, int]) -> tuple[float, dict[str, float]]:
        """(score, sections) from per-subset mean credits and item counts, for suites whose official numbers are
        such a function (they also return `item_credits`). Others raise NotImplementedError and are bootstrapped
        by re-scoring resampled tables."""
        raise NotImplementedError

    def resampled_id(self, item_id: str, copy: int) -> str:
        """A distinct id for the `copy`-th draw of an item in a bootstrap resample (suites whose scores read ids
        override this to keep their id format)."""
        return f"{item_id}#{copy}"


# ---- helpers shared by suites ------------------------------------------------------------------------------


def candidate_scores(
    items: pa.Table, results: pa.Table, unparsed: float = math.nan
) -> tuple[list[list[float]], list[bool]]:
    """Per item (in `items` order), the pointwise score of each candidate (NaN where missing or errored), and
    whether the item has any NaN score. Errors count as wrong under every official rule.

    `unparsed` is the score of a judge's rating that could not be parsed (`parsed` false, no error); reward
    models leave `parsed` null, so it never applies to them. See rmorch.suites.judging."""
    n_cand = candidate_counts(items)
    index = {iid: i for i, iid in enumerate(items.column("item_id").to_pylist())}
    scores = [[math.nan] * n for n in n_cand]
    pointwise = results.filter(pc.is_valid(results.column("candidate")))
    for iid, cand, score, parsed, err in zip(
        pointwise.column("item_id").to_pylist(),
        pointwise.column("candidate").to_pylist(),
        pointwise.column("score").to_pylist(),
        pointwise.column("parsed").to_pylist(),
        pointwise.column("error").to_pylist(),
    ):
        i = index.get(iid)
        if i is None or not 0 <= cand < n_cand[i]:
            continue
        if err is not None:
            continue
        if parsed is False:
            scores[i][cand] = unparsed
        elif score is not None:
            scores[i][cand] = float(score)
    bad = [any(math.isnan(s) for s in row) for row in scores]
    return scores, bad


def plain(value: Any) -> Any:
    """A value read from parquet or the hub as plain Python: a numpy array as a (nested) list, a numpy scalar as its
    Python scalar (`tolist` does both); any other value as it is (the values inside a Python list are left alone)."""
    return value.tolist() if hasattr(value, "tolist") else value


def meta_json(meta: Any) -> str:
    """An item's meta as the JSON text the item table stores (as rmorch.core.schema.items_table writes it), with
    the values JSON has no type for (parquet bytes, timestamps, decimals; numpy values) as lists or text."""
    return json.dumps(meta, sort_keys=True, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    converted = plain(value)
    return str(value) if converted is value else converted  # not a numpy value: its text


def optional_fields(rec: Record, names: Iterable[str]) -> dict[str, Any]:
    """The fields among `names` that the record has with a non-null value, as plain Python: an item's meta."""
    return {k: plain(rec.data[k]) for k in names if rec.data.get(k) is not None}


def pairwise_credit(scores: list[float]) -> float:
    """1.0 iff the first candidate (chosen, preferred) scores strictly above the second; ties and NaN are wrong."""
    return 1.0 if scores[0] > scores[1] else 0.0


def item_mean(means: dict[str, float], counts: dict[str, int]) -> float:
    """The mean over items from per-subset mean credits and item counts (NaN without items)."""
    n = sum(counts[s] for s in means)
    return sum(m * counts[s] for s, m in means.items()) / n if n else math.nan


def subset_means(subsets: list[str], values: list[float]) -> dict[str, float]:
    """Mean of `values` per subset name, subsets in first-seen order."""
    sums: dict[str, list[float]] = {}
    for s, v in zip(subsets, values):
        sums.setdefault(s, []).append(v)
    return {s: float(np.mean(v)) for s, v in sums.items()}


def require(rec: Record, name: str) -> Any:
    """The non-null field `name` of a record, or a DataError naming file, row and field."""
    value = rec.data.get(name)
    if value is None:
        raise DataError(rec.source, "missing field", row=rec.row, field=name)
    return value


def require_str(rec: Record, name: str, allow_empty: bool = False) -> str:
    """The string field `name` of a record, or a DataError naming file, row and field."""
    if name not in rec.data:
        raise DataError(rec.source, "missing field", row=rec.row, field=name)
    value = rec.data[name]
    if not isinstance(value, str):
        raise DataError(rec.source, f"expected a string, got {type(value).__name__}", row=rec.row, field=name)
    if not allow_empty and not value.strip():
        raise DataError(rec.source, "empty string", row=rec.row, field=name)
    return value


def require_str_list(rec: Record, name: str) -> list[str]:
    """A non-empty list of non-empty strings, or a DataError naming file, row and field."""
    if name not in rec.data:
        raise DataError(rec.source, "missing field", row=rec.row, field=name)
    value = plain(rec.data[name])
    if not isinstance(value, (list, tuple)) or not value:
        raise DataError(rec.source, f"expected a non-empty list of strings, got {value!r:.80}", row=rec.row, field=name)
    for k, v in enumerate(value):
        if not isinstance(v, str):
            raise DataError(rec.source, f"element {k} is {type(v).__name__}, not a string", row=rec.row, field=name)
        if not v.strip():
            raise DataError(rec.source, f"element {k} is an empty string", row=rec.row, field=name)
    return list(value)


def require_messages(rec: Record, name: str, allow_str: bool = False,
                     expected: str = "{role, content} messages") -> list[dict[str, str]]:
    """A chat prompt: the field `name` as a non-empty list of {role, content} objects (each copied as just those two
    keys), or with `allow_str` a non-blank string (one user message); else a DataError naming file, row and field.

    `expected` names the list's elements in the error text. An absent or null field is "missing field", except
    where a string is allowed: there it is the same error as any other value that is neither."""
    value = rec.data.get(name)
    if allow_str and isinstance(value, str):
        return [{"role": "user", "content": require_str(rec, name)}]
    value = plain(value if allow_str else require(rec, name))
    if not isinstance(value, list) or not value:
        raise DataError(rec.source, f"expected {'a string or ' if allow_str else ''}a non-empty list of {expected}",
                        row=rec.row, field=name)
    messages = []
    for k, m in enumerate(value):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise DataError(rec.source, f"message {k} is not a {{role, content}} object", row=rec.row, field=name)
        messages.append({"role": m["role"], "content": m["content"]})
    return messages


def options_fields(options_cls: type[SuiteOptions]) -> list[str]:
    return [f.name for f in dataclasses.fields(options_cls)]


__all__ = [
    "ITEM_SCHEMA",
    "Suite",
    "SuiteOptions",
    "SuiteScore",
    "candidate_scores",
    "item_mean",
    "meta_json",
    "optional_fields",
    "pairwise_credit",
    "plain",
    "require",
    "require_messages",
    "require_str",
    "require_str_list",
    "subset_means",
]
