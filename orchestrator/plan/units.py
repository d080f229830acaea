"""From a spec to work units: load each suite into the canonical item table, cut it into shards, and give every
(model, shard) a content key. The plan minus what the store already has is what a (re)run computes.

Unit key = hash of (model name, the model's identity: its settings, provenance and the seed
(rmorch.orchestrator.plan.provenance), suite name, suite version, the shard's item content, seed, permutation).
Shards are consecutive runs of `shard_size` items of the suite table, so they do not depend on the cluster. Comparing judges get one unit per (shard, permutation): every presented order of an item is a separate
unit of work (rmorch.core.permutations), scheduled like any other.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa

from rmorch.actors import get_kind
from rmorch.actors.base import Presentation
from rmorch.actors.worker import ShardTask
from rmorch.core.errors import SpecError
from rmorch.core.hashing import stable_hash
from rmorch.core.model_spec import ModelSpec
from rmorch.core.permutations import Permutations
from rmorch.orchestrator.plan.costs import CHARS_PER_TOKEN, param_hint_b
from rmorch.orchestrator.plan.items import ItemFile, narrow_columns, spool_directory
from rmorch.orchestrator.plan.provenance import model_identities
from rmorch.orchestrator.spec.parse import suite_class
from rmorch.orchestrator.spec.sweep_spec import SuiteSpec, SweepSpec
from rmorch.orchestrator.store.results import ManifestEntry, ResultStore
from rmorch.suites import Suite


@dataclass(frozen=True)
class LoadedSuite:
    """A loaded suite: its item table in a local Parquet file (rmorch.orchestrator.plan.items), only narrow columns in memory."""

    spec: SuiteSpec
    suite: Suite
    file: ItemFile  # the canonical item table (sampled and filtered), on the driver's disk
    index: pa.Table  # rmorch.orchestrator.plan.items.narrow_columns of every item, in table order

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def num_rows(self) -> int:
        return self.file.num_rows

    def rows(self, start: int, stop: int) -> pa.Table:
        """Items [start, stop) of the table."""
        return self.file.rows(start, stop)

    @property
    def items(self) -> pa.Table:
        """The whole item table in memory: for tests and small tools; a sweep reads row ranges instead."""
        return self.file.read()


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
    cost: float  # compute estimate: tokens x billions of parameters (rmorch.orchestrator.plan.costs)
    permutation: int = 0  # which presented order of each item (comparing judges); 0 otherwise
    rated_subsets: tuple[str, ...] = ()  # subsets the suite always has rated, never compared
    # a finished unit redone for its error rows: the positions of those rows (= of their requests), the only ones
    # computed (rmorch.orchestrator.plan.redo); None: every request
    requests: tuple[int, ...] | None = None
    identity: str | None = None  # the model's (rmorch.orchestrator.plan.provenance), written into every row

    def task(self, seed: int) -> ShardTask:
        """What a replica is sent to compute this unit."""
        return ShardTask(self.key, self.model, self.suite, self.start, self.stop, self.permutation,
                         self.rated_subsets, seed, self.requests, self.identity)

    def manifest_entry(self, table: pa.Table, n_errors: int, seconds: float) -> ManifestEntry:
        """The manifest entry of this unit finished as `table` (the store adds the file's size and hash)."""
        return ManifestEntry(key=self.key, model=self.model, suite=self.suite, shard=self.shard,
                             file=ResultStore.unit_file(self.model, self.suite, self.key), n_rows=table.num_rows,
                             n_errors=n_errors, seconds=seconds, identity=self.identity)


def load_suite(spec: SuiteSpec, seed: int, spool: str | None = None) -> LoadedSuite:
    """Load, validate, filter and sample a suite batch by batch into an ItemFile in the directory `spool` (a new
    temporary directory, removed with the LoadedSuite, when not given)."""
    suite = suite_class(spec.name, spec.kind)(spec.options)
    own = spool_directory() if spool is None else None
    directory = own.name if own is not None else spool
    try:
        narrow: list[pa.Table] = []

        def batches() -> Iterator[pa.Table]:
            for batch in suite.load_batches(spec.data, spec.split):
                narrow.append(narrow_columns(batch))
                yield batch

        file = ItemFile.write(_spool_path(directory), batches())
        index = pa.concat_tables(narrow).combine_chunks()
        keep: list[int] | None = None
        if spec.subsets is not None:
            subsets = index.column("subset").to_pylist()
            present = set(subsets)
            missing = [s for s in spec.subsets if s not in present]
            if missing:
                raise SpecError(f"suites.{spec.name}.subsets",
                                f"not in the data: {missing}; present: {sorted(present)}")
            wanted = set(spec.subsets)
            keep = [i for i, s in enumerate(subsets) if s in wanted]
        if spec.limit_per_subset is not None:
            part = index if keep is None else index.take(keep)
            rows = suite.sample_rows(part.column("subset").to_pylist(), part.column("item_id").to_pylist(),
                                     spec.limit_per_subset, seed)
            keep = rows if keep is None else [keep[r] for r in rows]
        if keep is not None and len(keep) < index.num_rows:
            sampled = file.take(keep, _spool_path(directory))
            file.remove()
            file, index = sampled, index.take(keep)
    except BaseException:
        if own is not None:
            own.cleanup()
        raise
    loaded = LoadedSuite(spec, suite, file, index)
    if own is not None:
        weakref.finalize(loaded, own.cleanup)
    return loaded


def _spool_path(directory: str) -> str:
    fd, path = tempfile.mkstemp(dir=directory, prefix="items-", suffix=".parquet")
    os.close(fd)
    return path


def shard_hashes(items: ItemFile, shard_size: int) -> Iterator[tuple[int, int, str]]:
    """(start, stop, content hash) per shard."""
    columns = ["item_id", "prompt", "candidates", "correct", "context"]
    for start, shard in items.slices(shard_size):  # one shard at a time in Python: memory stays bounded
        part = shard.select(columns).to_pydict()
        h = hashlib.sha256()
        for row in zip(*(part[c] for c in columns)):
            h.update(json.dumps(list(row), ensure_ascii=False).encode())
        yield start, start + shard.num_rows, h.hexdigest()[:16]


def make_units(spec: SweepSpec, suites: list[LoadedSuite],
               identities: Mapping[str, str] | None = None) -> list[WorkUnit]:
    """Every unit of the plan. `identities`: each model's (rmorch.orchestrator.plan.provenance.model_identities);
    computed here when not given."""
    if identities is None:
        identities = {n: i.identity for n, i in model_identities(spec.models, spec.seed).items()}
    units = []
    for ls in suites:
        shards = list(shard_hashes(ls.file, spec.shard_size))
        subsets = ls.index.column("subset").to_pylist()
        rated_subsets = tuple(s for s in dict.fromkeys(subsets) if ls.suite.always_rated(s))
        n_cands = ls.index.column("n_candidates").to_pylist()
        chars = ls.index.column("chars").to_pylist()
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
                    key = unit_key(model, identities[model.name], ls, content, spec.seed, p)
                    tokens = sum(chars[i] for i in rows) / CHARS_PER_TOKEN
                    units.append(WorkUnit(key, model.name, ls.name, shard, start, stop, n, tokens,
                                          tokens * params_b, p, rated_subsets, identity=identities[model.name]))
    return units


def _orders_per_item(model: ModelSpec, presentation: Presentation, ls: LoadedSuite, n_cands: list[int],
                     rated_subsets: tuple[str, ...]) -> list[int]:
    """Units each item takes part in: the number of its presented orders (comparisons), else 1."""
    if not presentation.compares:
        return [1] * len(n_cands)
    perms = Permutations.parse(presentation.permutations)
    subsets = ls.index.column("subset").to_pylist()
    ids = ls.index.column("item_id").to_pylist()
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
        if out[-1] < min(ls.suite.min_orders, math.factorial(n)):
            raise SpecError(f"models.{model.name}.permutations",
                            f"suite {ls.name} needs every item judged in at least {ls.suite.min_orders} orders (its "
                            f"official metric), but permutations '{presentation.permutations}' show {out[-1]}: set "
                            f"`permutations: both`, or leave {ls.name} out of the model's `suites`")
    return out


def unit_key(model: ModelSpec, identity: str, suite: LoadedSuite, content_hash: str, seed: int,
             permutation: int = 0) -> str:
    return stable_hash(
        {
            "model": model.name,
            "identity": identity,
            "suite": suite.name,
            "suite_version": suite.suite.version,
            "items": content_hash,
            "seed": seed,
            **({"permutation": permutation} if permutation else {}),
        }
    )
