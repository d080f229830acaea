"""From a spec to work units: load each suite into the canonical item table, cut it into shards, and give every
(model, shard) a content key. The plan minus what the store already has is what a (re)run computes.

Unit key = hash of (model name, model settings hash, suite name, suite version, the shard's item content, seed).
Shards are consecutive runs of `shard_size` items of the suite table, so they do not depend on the cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa

from orchestrator.spec import ModelSpec, SuiteSpec, SweepSpec, stable_hash
from suites import Suite, get_suite_class


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
    n_requests: int  # pointwise scores to compute
    cost: float  # relative cost estimate (characters to read)


def load_suite(spec: SuiteSpec, seed: int) -> LoadedSuite:
    suite = get_suite_class(spec.name)(spec.options)
    items = suite.load(spec.data, spec.split)
    if spec.subsets is not None:
        present = set(items.column("subset").to_pylist())
        missing = [s for s in spec.subsets if s not in present]
        if missing:
            from orchestrator.errors import SpecError

            raise SpecError(f"suites.{spec.name}.subsets", f"not in the data: {missing}; present: {sorted(present)}")
        mask = pa.array([s in spec.subsets for s in items.column("subset").to_pylist()])
        items = items.filter(mask)
    if spec.limit_per_subset is not None:
        items = suite.sample(items, spec.limit_per_subset, seed)
    return LoadedSuite(spec, suite, items)


def shard_hashes(items: pa.Table, shard_size: int) -> Iterator[tuple[int, int, str, int, float]]:
    """(start, stop, content hash, candidate count, cost) per shard."""
    ids = items.column("item_id").to_pylist()
    prompts = items.column("prompt").to_pylist()
    cands = items.column("candidates").to_pylist()
    correct = items.column("correct").to_pylist()
    context = items.column("context").to_pylist()
    for start in range(0, len(ids), shard_size):
        stop = min(start + shard_size, len(ids))
        h = hashlib.sha256()
        n, cost = 0, 0.0
        for i in range(start, stop):
            h.update(json.dumps([ids[i], prompts[i], cands[i], correct[i], context[i]], ensure_ascii=False).encode())
            n += len(cands[i])
            prompt_chars = sum(len(m["content"]) for m in prompts[i])
            cost += sum(len(c) + prompt_chars for c in cands[i])
        yield start, stop, h.hexdigest()[:16], n, cost


def make_units(spec: SweepSpec, suites: list[LoadedSuite]) -> list[WorkUnit]:
    units = []
    for ls in suites:
        shards = list(shard_hashes(ls.items, spec.shard_size))
        for model in spec.models:
            for shard, (start, stop, content, n, cost) in enumerate(shards):
                key = unit_key(model, ls, content, spec.seed)
                units.append(WorkUnit(key, model.name, ls.name, shard, start, stop, n, cost))
    return units


def unit_key(model: ModelSpec, suite: LoadedSuite, content_hash: str, seed: int) -> str:
    return stable_hash(
        {
            "model": model.name,
            "settings": model.settings_hash,
            "suite": suite.name,
            "suite_version": suite.suite.version,
            "items": content_hash,
            "seed": seed,
        }
    )
