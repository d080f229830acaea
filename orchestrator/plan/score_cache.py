"""Never score the same thing twice: outcomes already in the store, reused by content.

A model's outcome for a request depends only on the model's identity (its settings, provenance -- model files,
templates, kind version, libraries, hardware -- and the sweep seed: rmorch.orchestrator.plan.provenance) and what
the model is shown (`rmorch.actors.base.content_key`: prompt, responses in the presented order, context). So a result row
of an earlier run -- another suite, another shard size, a smaller `limit_per_subset`, another permutation that
showed the same texts -- answers any later request with the same key. Kinds opt out with `cacheable = False`
(length, random, published); sampling judges key on the item's identity too.

Before scheduling, the driver loads, for each model with work left, the successful rows of its earlier results
of the same identity (rows of another identity are never reused). A unit whose every request is known is written
straight from them (marked `cached`) and never needs the model loaded; for the others the known outcomes travel with the unit
(`known_for`), and the replica scores only the rest (rmorch.actors.worker also scores each distinct key once per replica).
Rows computed during the sweep join the cache as they are written. Error rows are never reused. A unit redone for
its error rows (rmorch.orchestrator.plan.redo) asks the cache for those requests only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from rmorch.actors import get_kind
from rmorch.actors.base import InferenceSettings, ScoreOutcome
from rmorch.actors.worker import result_rows, shard_requests
from rmorch.core.model_spec import ModelSpec
from rmorch.orchestrator.plan.items import ItemFile, item_rows
from rmorch.orchestrator.plan.redo import write_result
from rmorch.orchestrator.plan.units import WorkUnit
from rmorch.orchestrator.spec.sweep_spec import SweepSpec
from rmorch.orchestrator.store.results import ResultStore

OUTCOME_COLUMNS = ["content_key", "score", "scores", "verdict", "probs", "order", "raw_output", "parsed", "n_tokens",
                   "truncated", "backend", "dtype", "max_length", "truncation_side", "chat_template"]


@dataclass
class ScoreCache:
    seed: int
    known: dict[str, dict[str, ScoreOutcome]] = field(default_factory=dict)  # model -> content key -> outcome
    settings: dict[str, InferenceSettings] = field(default_factory=dict)  # model -> settings of its cached rows
    unit_keys: dict[str, list[str | None]] = field(default_factory=dict)  # unit key -> cache key per request
    reused_requests: int = 0  # requests answered from the cache before scheduling

    @classmethod
    def from_store(cls, store: ResultStore, spec: SweepSpec, pending: list[WorkUnit]) -> ScoreCache:
        """The cacheable outcomes of every model that has pending units (only those models' files are read)."""
        cache = cls(spec.seed)
        identities = {u.model: u.identity for u in pending}
        models = {m.name: m for m in spec.models if get_kind(m.kind).cacheable and m.name in identities}
        if not models:
            return cache
        entries = [e for e in store.manifest() if e.model in models]
        for name, model in models.items():
            identity = identities[name]
            table = store.read_results([e for e in entries if e.model == name and e.identity == identity])
            cache.add(model, table, identity)
        return cache

    def add(self, model: ModelSpec, table: pa.Table, identity: str | None) -> None:
        """Remember the successful, keyed rows of `table` that `model` produced as `identity` (its identity in this
        sweep: the unit's); rows of any other identity are left out."""
        if not get_kind(model.kind).cacheable or table.num_rows == 0 or identity is None:
            return
        usable = pc.and_(pc.equal(table["identity"], identity),
                         pc.and_(pc.is_null(table["error"]), pc.is_valid(table["content_key"])))
        rows = table.filter(pc.fill_null(usable, False)).select(OUTCOME_COLUMNS).to_pylist()
        if not rows:
            return
        known = self.known.setdefault(model.name, {})
        for r in rows:
            known[r["content_key"]] = _outcome(r)
        last = rows[-1]
        self.settings.setdefault(model.name, InferenceSettings(
            backend=last["backend"], dtype=last["dtype"], max_length=last["max_length"],
            truncation_side=last["truncation_side"], chat_template=last["chat_template"]))

    def resolve(self, spec: SweepSpec, pending: list[WorkUnit], items: Mapping[str, ItemFile | pa.Table],
                store: ResultStore) -> list[WorkUnit]:
        """Write every pending unit the cache answers whole; return the units left to schedule. `items`: each
        suite's item table or file (only the rows of cacheable models' units are read)."""
        models = {m.name: m for m in spec.models}
        left = []
        for unit in pending:
            model = models[unit.model]
            kind = get_kind(model.kind)
            if not kind.cacheable:
                left.append(unit)
                continue
            task = unit.task(self.seed)
            shard = item_rows(items[unit.suite], unit.start, unit.stop)
            reqs = shard_requests(shard, kind.presentation(model.config), task)
            keys = [kind.cache_key(model.config, r) for r in reqs]
            known = self.known.get(unit.model, {})
            if reqs and all(k is not None and k in known for k in keys):
                outcomes = [known[k] for k in keys]  # type: ignore[index]
                table = result_rows(task, shard, reqs, outcomes, self.settings[unit.model], model.settings_hash,
                                    keys, [True] * len(reqs))
                write_result(store, unit, table, n_errors=0, seconds=0.0)
                self.reused_requests += len(reqs)
            else:
                self.unit_keys[unit.key] = keys
                left.append(unit)
        return left

    def known_for(self, unit: WorkUnit) -> dict[str, ScoreOutcome]:
        """The outcomes already known for this unit's requests (what its replica need not score)."""
        known = self.known.get(unit.model)
        if not known:
            return {}
        return {k: known[k] for k in self.unit_keys.get(unit.key, ()) if k is not None and k in known}


def _outcome(row: dict) -> ScoreOutcome:
    choice, probs = None, row["probs"]
    if row["order"]:  # back to presented positions; the key fixes the texts in each position
        if row["verdict"] is not None:
            choice = row["order"].index(row["verdict"])
        if probs is not None:
            probs = [probs[c] for c in row["order"]]
    return ScoreOutcome(score=row["score"], scores=row["scores"], choice=choice, probs=probs,
                        raw_output=row["raw_output"],
                        parsed=row["parsed"], n_tokens=row["n_tokens"], truncated=row["truncated"])
