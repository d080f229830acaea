"""From a spec to work units: load each suite into the canonical item table, cut it into shards, and give every
(model, shard) a content key. The plan minus what the store already has is what a (re)run computes.

Unit key = hash of (model name, model settings hash, suite name, suite version, the shard's item content, seed,
permutation). Shards are consecutive runs of `shard_size` items of the suite table, so they do not depend on the
cluster. Comparing judges get one unit per (shard, permutation): every presented order of an item is a separate
unit of work (orchestrator.permutations), scheduled like any other.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors import get_kind
from actors.base import Presentation
from orchestrator.costs import CHARS_PER_TOKEN, param_hint_b
from orchestrator.errors import SpecError
from orchestrator.permutations import Permutations
from orchestrator.schema import candidate_counts
from orchestrator.spec import ModelSpec, SuiteSpec, SweepSpec, stable_hash, suite_class
from suites import Suite


@dataclass(frozen=True)
class LoadedSuite:
    spec: SuiteSpec
    suite: Suite
    items: pa.Table

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class WorkUnit:
    key: str
    model: str
    suite: str
    shard: int
    start: int  # row range [start, stop) of the suite's item table
    stop: int
    n_requests: int  # pointwise scores or comparisons to compute
    tokens: float  # tokens the model reads, estimated as characters / 4
    cost: float  # compute estimate: tokens x billions of parameters (orchestrator.costs)
    permutation: int = 0  # which presented order of each item (comparing judges); 0 otherwise
    rated_subsets: tuple[str, ...] = ()  # subsets the suite always has rated, never compared


def load_suite(spec: SuiteSpec, seed: int) -> LoadedSuite:
    suite = suite_class(spec.name, spec.kind)(spec.options)
    items = suite.load(spec.data, spec.split)
    if spec.subsets is not None:
        present = set(items.column("subset").to_pylist())
        missing = [s for s in spec.subsets if s not in present]
        if missing:
            raise SpecError(f"suites.{spec.name}.subsets", f"not in the data: {missing}; present: {sorted(present)}")
        mask = pa.array([s in spec.subsets for s in items.column("subset").to_pylist()])
        items = items.filter(mask)
    if spec.limit_per_subset is not None:
        items = suite.sample(items, spec.limit_per_subset, seed)
    return LoadedSuite(spec, suite, items)


def shard_hashes(items: pa.Table, shard_size: int) -> Iterator[tuple[int, int, str]]:
    """(start, stop, content hash) per shard."""
    columns = ["item_id", "prompt", "candidates", "correct", "context"]
    for start in range(0, items.num_rows, shard_size):  # one shard at a time in Python: memory stays bounded
        stop = min(start + shard_size, items.num_rows)
        part = items.slice(start, stop - start).select(columns).to_pydict()
        h = hashlib.sha256()
        for row in zip(*(part[c] for c in columns)):
            h.update(json.dumps(list(row), ensure_ascii=False).encode())
        yield start, stop, h.hexdigest()[:16]


def make_units(spec: SweepSpec, suites: list[LoadedSuite]) -> list[WorkUnit]:
    units = []
    for ls in suites:
        shards = list(shard_hashes(ls.items, spec.shard_size))
        subsets = ls.items.column("subset").to_pylist()
        rated_subsets = tuple(s for s in dict.fromkeys(subsets) if ls.suite.always_rated(s))
        n_cands = candidate_counts(ls.items)
        chars = _item_chars(ls.items)
        for model in spec.models:
            if not model.runs_on(ls.name):
                continue
            params_b = param_hint_b(model)
            presentation = get_kind(model.kind).presentation(model.config)
            n_orders = _orders_per_item(model, presentation, ls, n_cands, rated_subsets)
            for shard, (start, stop, content) in enumerate(shards):
                for p in range(max(n_orders[start:stop])):
                    rows = [i for i in range(start, stop) if n_orders[i] > p]
                    if presentation.compares:  # comparisons: one request per item and order; ratings at p = 0
                        n = sum(1 if subsets[i] not in rated_subsets else n_cands[i] for i in rows)
                    else:
                        n = sum(n_cands[i] for i in rows)
                    key = unit_key(model, ls, content, spec.seed, p)
                    tokens = sum(chars[i] for i in rows) / CHARS_PER_TOKEN
                    units.append(WorkUnit(key, model.name, ls.name, shard, start, stop, n, tokens,
                                          tokens * params_b, p, rated_subsets))
    return units


def _item_chars(items: pa.Table) -> list[float]:
    """Characters a model reads per item (prompt once per candidate): the token estimate behind unit costs."""
    prompt = items.column("prompt").combine_chunks()
    cands = items.column("candidates").combine_chunks()
    prompt_chars = _list_sums(prompt, pc.struct_field(prompt.flatten(), "content"))
    cand_chars = _list_sums(cands, cands.flatten())
    n_cands = pc.list_value_length(cands).to_numpy(zero_copy_only=False)
    return (cand_chars + prompt_chars * n_cands).astype(float).tolist()


def _list_sums(lists: pa.ListArray, texts: pa.Array) -> np.ndarray:
    """Per list, the total characters of its texts (computed in Arrow; nulls count 0)."""
    lengths = pc.fill_null(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = lists.offsets.to_numpy() - lists.offsets[0].as_py()
    total = np.concatenate([[0], np.cumsum(lengths)])
    return total[offsets[1:]] - total[offsets[:-1]]


def _orders_per_item(model: ModelSpec, presentation: Presentation, ls: LoadedSuite, n_cands: list[int],
                     rated_subsets: tuple[str, ...]) -> list[int]:
    """Units each item takes part in: the number of its presented orders (comparisons), else 1."""
    if not presentation.compares:
        return [1] * len(n_cands)
    perms = Permutations.parse(presentation.permutations)
    subsets = ls.items.column("subset").to_pylist()
    ids = ls.items.column("item_id").to_pylist()
    out = []
    for n, subset, iid in zip(n_cands, subsets, ids):
        if subset in rated_subsets:
            out.append(1)
            continue
        if presentation.protocol == "pairwise" and n != 2:
            raise SpecError(f"models.{model.name}.protocol",
                            f"pairwise needs 2 candidates per item, but {ls.name} item '{iid}' has {n}: "
                            f"use `protocol: nway` or `protocol: rating`")
        if presentation.protocol == "nway" and n > 26:
            raise SpecError(f"models.{model.name}.protocol",
                            f"nway labels candidates A-Z, but {ls.name} item '{iid}' has {n}: use `protocol: rating`")
        try:
            out.append(perms.count(n))
        except ValueError as e:
            raise SpecError(f"models.{model.name}.permutations", str(e)) from None
    return out


def unit_key(model: ModelSpec, suite: LoadedSuite, content_hash: str, seed: int, permutation: int = 0) -> str:
    return stable_hash(
        {
            "model": model.name,
            "settings": model.settings_hash,
            "suite": suite.name,
            "suite_version": suite.suite.version,
            "items": content_hash,
            "seed": seed,
            **({"permutation": permutation} if permutation else {}),
        }
    )
