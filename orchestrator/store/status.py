"""`rmorch status OUT`: how far a sweep is, from its store alone (no Ray, no driver needed; a local path or a URI).

A sweep writes OUT/plan.json before it schedules anything: its run id and, per model and suite, the keys of every
unit it plans (done before or not). Progress is then the planned keys that have an intact manifest entry
(rmorch.orchestrator.store.results), the error rows those entries record, and when the newest entry landed. Units whose
rows include errors count as pending work too: a rerun computes those rows again (rmorch.orchestrator.plan.redo;
unless `--keep-errors`). The sweep is finished when run.json carries the same run id and the end-of-run metadata
(`last_run`), which the sweep writes last.

It also names the models whose finished units are of several identities (rmorch.orchestrator.plan.provenance: a
template or model edited in place, new settings, versions or seed): the store keeps the old results, the report uses
only the current identity's.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rmorch.core.errors import UserError
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import RunRecord, read_run

PLAN_FILE = "plan.json"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def write_plan(store: ResultStore, run_id: str, started: str, units: Iterable[Any]) -> None:
    """OUT/plan.json: the run id and the unit keys (and request counts) of every (model, suite) of this sweep."""
    keys: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    requests: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for u in units:
        keys[u.model][u.suite].append(u.key)
        requests[u.model][u.suite] += u.n_requests
    store.write_json(PLAN_FILE, {"run_id": run_id, "started": started,
                                 "units": {m: dict(s) for m, s in keys.items()},
                                 "requests": {m: dict(s) for m, s in requests.items()}})


@dataclass
class PairStatus:
    model: str
    suite: str
    units_done: int
    units_planned: int
    requests_planned: int
    error_rows: int
    units_with_errors: int = 0  # done units whose rows include errors: a rerun redoes those rows

    @property
    def units_pending(self) -> int:
        """Work left for a rerun: units not done, and done units with error rows to redo."""
        return self.units_planned - self.units_done + self.units_with_errors


@dataclass
class SweepStatus:
    out: str
    run_id: str | None
    started: str | None
    finished: bool
    pairs: list[PairStatus]
    last_update: float | None  # Unix time of the newest manifest entry of this plan
    failed_models: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, Any] | None = None  # the run was stopped by max_error_rate: run.json last_run.stopped
    other_units: int = 0  # finished units outside this plan (earlier settings or specs)
    # models whose finished units in the store are of several identities (rmorch.orchestrator.plan.provenance):
    # model -> how many; reports read the current one only
    identities: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # unusable files met while reading the store

    @property
    def units_done(self) -> int:
        return sum(p.units_done for p in self.pairs)

    @property
    def units_planned(self) -> int:
        return sum(p.units_planned for p in self.pairs)

    @property
    def error_rows(self) -> int:
        return sum(p.error_rows for p in self.pairs)

    @property
    def units_with_errors(self) -> int:
        return sum(p.units_with_errors for p in self.pairs)

    @property
    def units_pending(self) -> int:
        return sum(p.units_pending for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        pairs = [{**asdict(p), "units_pending": p.units_pending} for p in self.pairs]
        return {**asdict(self), "pairs": pairs, "units_done": self.units_done, "units_planned": self.units_planned,
                "units_pending": self.units_pending, "units_with_errors": self.units_with_errors,
                "error_rows": self.error_rows}


def read_status(out: str) -> SweepStatus:
    store = ResultStore(out)
    try:
        if not store.exists(PLAN_FILE):
            raise UserError(f"{out}: no {PLAN_FILE} here; is this the `out` of a sweep (of rmorch 0.1 or later)?")
        plan = store.read_json(PLAN_FILE)
        run = read_run(store) or RunRecord()
    except (OSError, ValueError) as e:
        raise UserError(f"{out}: cannot read the sweep's plan or run metadata: {e}") from None
    owner = {key: (model, suite) for model, suites in plan.get("units", {}).items()
             for suite, keys in suites.items() for key in keys}
    done: dict[tuple[str, str], int] = defaultdict(int)
    errors: dict[tuple[str, str], int] = defaultdict(int)
    errored: dict[tuple[str, str], int] = defaultdict(int)
    other = 0
    identities: dict[str, set[str | None]] = defaultdict(set)
    for entry in store.manifest():
        identities[entry.model].add(entry.identity)
        pair = owner.get(entry.key)
        if pair is None:
            other += 1
            continue
        done[pair] += 1
        errors[pair] += entry.n_errors
        errored[pair] += int(entry.n_errors > 0)
    times = store.entry_times()
    landed = [times[k] for k in owner if k in times]
    pairs = [PairStatus(model, suite, done[(model, suite)], len(keys),
                        plan.get("requests", {}).get(model, {}).get(suite, 0), errors[(model, suite)],
                        errored[(model, suite)])
             for model, suites in plan.get("units", {}).items() for suite, keys in suites.items()]
    last = run.last_run if run.run_id == plan.get("run_id") else None  # written when the planned run ended
    return SweepStatus(
        out=out, run_id=plan.get("run_id"), started=plan.get("started"), finished=last is not None, pairs=pairs,
        last_update=max(landed) if landed else None,
        failed_models=dict(last.failed_models) if last is not None else {},
        stopped=last.stopped if last is not None else None,
        other_units=other, problems=list(store.problems),
        identities={m: len(ids) for m, ids in identities.items() if len(ids) > 1},
    )


def describe_state(status: SweepStatus, now: float | None = None) -> str:
    """One line: finished or not, how much, and since when nothing landed."""
    now = time.time() if now is None else now
    done, planned = status.units_done, status.units_planned
    if status.finished and status.stopped:
        s = status.stopped
        state = (f"stopped early: {s['error_rows']} of {s['rows']} result rows were errors, above max_error_rate "
                 f"{s['max_error_rate']:g} (rerun with the cap raised to resume)")
    elif status.finished:
        state = "finished with work left (rerun the same sweep to do it)" if status.units_pending else "finished"
    else:
        state = "not finished (running, or stopped: rerun the same sweep to resume)"
    if status.last_update is not None:
        age = f"{now - status.last_update:.0f} s ago"
    else:
        age = "at an unknown time (the filesystem keeps no times)" if done else "none yet"
    pending = f", {pending_work(status)}" if status.units_pending else ""
    errors = f"{status.error_rows} error rows"
    if status.units_with_errors:
        errors += " (a rerun redoes them unless --keep-errors)"
    return (f"{state}: {done}/{planned} units ({_pct(done, planned)}){pending}, {errors}; "
            f"last unit landed {age}; started {status.started}")


def several_identities(model: str, n: int) -> str:
    """The note for a model whose results in the store are of `n` > 1 identities."""
    return (f"model {model}: the store holds results of {n} identities (its settings, model or template files, "
            f"kind version, libraries, hardware or seed changed between sweeps); the leaderboard uses the current "
            f"one only")


def pending_work(status: SweepStatus) -> str:
    """E.g. '12 units pending (3 with error rows to redo)'."""
    redo = f" ({status.units_with_errors} with error rows to redo)" if status.units_with_errors else ""
    return f"{status.units_pending} units pending{redo}"


def _pct(done: int, planned: int) -> str:
    return f"{100.0 * done / planned:.1f} %" if planned else "n/a"
