"""Error rows are redone: a rerun computes again only the requests that failed in finished units and keeps the good
rows of those units as they are.

A finished unit whose result holds error rows (`n_errors` of its manifest entry) is planned again, restricted to
them: `WorkUnit.requests` holds their positions. A unit's rows are written in the order of its requests
(rmorch.actors.worker.shard_requests) and its key fixes those requests, so a position names the same request in
every run. The replica, the score cache and the error rows of a unit that fails again all cover only these
requests; `write_result` puts the new rows in their places among the unit's earlier rows and writes the whole unit
again under its key, so its row set is a fault-free run's. Nothing here depends on content keys: kinds that are
never cached (length, random, published) keep their good rows the same way.

`keep_errors` (the spec's key; `rmorch sweep --keep-errors`) keeps error rows as final: such units count as done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

import pyarrow as pa

from rmorch.core.errors import UserError
from rmorch.orchestrator.plan.units import WorkUnit
from rmorch.orchestrator.store.results import ManifestEntry, ResultStore


def pending_units(units: list[WorkUnit], done: Mapping[str, ManifestEntry], store: ResultStore,
                  keep_errors: bool = False) -> list[WorkUnit]:
    """The units of the plan that this run computes: those without a verified result (`done`: the verified manifest
    entries by key), and, unless `keep_errors`, those whose result holds error rows, restricted to those rows."""
    errored = [] if keep_errors else [done[u.key] for u in units if u.key in done and done[u.key].n_errors]
    positions = error_positions(store, errored)
    pending = []
    for u in units:
        if u.key not in done:
            pending.append(u)
        elif u.key in positions:
            pending.append(restricted(u, positions[u.key]))
    return pending


def error_positions(store: ResultStore, entries: list[ManifestEntry]) -> dict[str, tuple[int, ...]]:
    """Per unit key of `entries`, the positions of the error rows in its result (units without any are left out)."""
    if not entries:
        return {}
    table = store.read_results(entries, columns=["unit_key", "error"])
    seen: Counter[str] = Counter()
    out: dict[str, list[int]] = {}
    for key, error in zip(table.column("unit_key").to_pylist(), table.column("error").to_pylist()):
        if error is not None:
            out.setdefault(key, []).append(seen[key])
        seen[key] += 1
    return {k: tuple(v) for k, v in out.items()}


def restricted(unit: WorkUnit, positions: tuple[int, ...]) -> WorkUnit:
    """`unit` computing only its requests at `positions`; its size and cost scaled to them."""
    share = len(positions) / unit.n_requests if unit.n_requests else 1.0
    return replace(unit, requests=positions, n_requests=len(positions), tokens=unit.tokens * share,
                   cost=unit.cost * share)


def merge_redone(earlier: pa.Table, positions: tuple[int, ...], redone: pa.Table) -> pa.Table:
    """`earlier` (a unit's result) with its rows at `positions` replaced, in order, by the rows of `redone`."""
    n = earlier.num_rows
    if redone.num_rows != len(positions) or any(not 0 <= i < n for i in positions):
        raise ValueError(f"{redone.num_rows} redone rows for positions {positions[:10]} of a unit of {n} rows")
    if earlier.column("item_id").take(list(positions)).to_pylist() != redone.column("item_id").to_pylist():
        raise ValueError("the redone rows are not the requests of the earlier error rows")
    order = list(range(n))
    for j, i in enumerate(positions):
        order[i] = n + j
    return pa.concat_tables([earlier, redone.cast(earlier.schema)]).take(order)


def write_result(store: ResultStore, unit: WorkUnit, table: pa.Table, n_errors: int, seconds: float) -> pa.Table:
    """Write `table`, the rows computed for `unit` in this run (`n_errors` of them errors), as the unit's result; a
    unit redone for its error rows gets its earlier good rows back around them. Returns the table written."""
    if unit.requests is not None:
        entry = store.unit_entry(unit.key)
        earlier = store.read_results([entry]) if entry is not None else None
        if earlier is None or earlier.num_rows == 0:
            raise UserError(f"{store.path(ResultStore.unit_file(unit.model, unit.suite, unit.key))}: the earlier "
                            f"result of unit {unit.key} is gone or unusable (changed during the sweep?); rerun the "
                            f"sweep to compute the unit again")
        table = merge_redone(earlier, unit.requests, table)
    store.write_unit(unit.manifest_entry(table, n_errors, seconds), table)
    return table
