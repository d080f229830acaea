"""`rmorch status OUT`: how far a sweep is, from its store alone (no Ray, no driver needed; a local path or a URI).

A sweep writes OUT/plan.json before it schedules anything: its run id and, per model and suite, the keys of every
unit it plans (done before or not). Progress is then the planned keys that have an intact manifest entry
(rmorch.orchestrator.store.results), the error rows those entries record, and when the newest entry landed. Units whose
rows include errors count as pending work too: a rerun computes those rows again (rmorch.orchestrator.plan.redo;
unless `--keep-errors`). The sweep is finished when run.json carries the same run id and the end-of-run metadata
(`last_run`), which the sweep writes last.

It also names the models whose finished units are of several identities (rmorch.orchestrator.plan.provenance: a
template or model edited in place, new settings, versions or seed): the store keeps the old results, the report uses
only the current identity's. Of a finished run it names the models stopped by the per-model error cap
(`max_error_rate`) and those whose replicas were lost while working and replaced (process died, engine died, unit
timed out), from run.json's `last_run`.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rmorch.core.errors import UserError
from rmorch.orchestrator.plan.costs import NO_GPU_PARAMS_B, CostModel
from rmorch.orchestrator.plan.estimate import LandedUnit, ModelProgress, model_progress, sweep_eta
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import RunRecord, read_run

PLAN_FILE = "plan.json"
MAX_REASONS = 3  # distinct reasons shown per model whose replicas were replaced


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def write_plan(store: ResultStore, run_id: str, started: str, units: Iterable[Any]) -> None:
    """OUT/plan.json: the run id and the unit keys (and request counts) of every (model, suite) of this sweep."""
    keys: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    sizes: dict[str, dict[str, list[list[float]]]] = defaultdict(lambda: defaultdict(list))
    requests: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for u in units:
        keys[u.model][u.suite].append(u.key)
        sizes[u.model][u.suite].append([round(u.tokens, 1), round(u.cost, 3)])
        requests[u.model][u.suite] += u.n_requests
    store.write_json(PLAN_FILE, {"run_id": run_id, "started": started,
                                 "units": {m: dict(s) for m, s in keys.items()},
                                 "requests": {m: dict(s) for m, s in requests.items()},
                                 # per unit, in the order of `units`: [input tokens, cost] (rmorch.orchestrator.plan.units)
                                 "sizes": {m: dict(s) for m, s in sizes.items()}})


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
    # models stopped by the per-model max_error_rate while the others went on: run.json last_run.stopped_models
    # (model -> {max_error_rate, rows, error_rows, top_error, top_error_rows})
    stopped_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    # model -> why each of its replicas lost while working was replaced (process died, engine died, unit timed out):
    # run.json last_run.replaced
    replaced: dict[str, list[str]] = field(default_factory=dict)
    other_units: int = 0  # finished units outside this plan (earlier settings or specs)
    # models whose finished units in the store are of several identities (rmorch.orchestrator.plan.provenance):
    # model -> how many; reports read the current one only
    identities: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # unusable files met while reading the store
    # per model of the plan: measured rate, work left, ETA, stalled (rmorch.orchestrator.plan.estimate)
    progress: list[ModelProgress] = field(default_factory=list)
    eta_seconds: float | None = None  # the whole sweep's scoring time left at its pace so far; None: unknown

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
    unit_seconds: dict[str, float] = {}
    done_keys: dict[str, int] = {}  # unit key -> its error rows
    for entry in store.manifest():
        identities[entry.model].add(entry.identity)
        pair = owner.get(entry.key)
        if pair is None:
            other += 1
            continue
        unit_seconds[entry.key] = entry.seconds
        done_keys[entry.key] = entry.n_errors
        done[pair] += 1
        errors[pair] += entry.n_errors
        errored[pair] += int(entry.n_errors > 0)
    times = store.entry_times()
    landed = [times[k] for k in owner if k in times]
    progress, eta = _progress(plan, run, unit_seconds, times, done_keys, time.time(),
                              run.last_run is not None and run.run_id == plan.get("run_id"))
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
        stopped_models=dict(last.stopped_models) if last is not None else {},
        replaced=dict(last.replaced) if last is not None else {},
        other_units=other, problems=list(store.problems),
        identities={m: len(ids) for m, ids in identities.items() if len(ids) > 1},
        progress=progress, eta_seconds=eta,
    )


def _progress(plan: dict[str, Any], run: RunRecord, unit_seconds: dict[str, float], times: dict[str, float],
              done: dict[str, int], now: float, finished: bool) -> tuple[list[ModelProgress], float | None]:
    """Per model of the plan, its rate, work left and ETA (rmorch.orchestrator.plan.estimate.model_progress) from the
    units that landed since the run started; and the whole sweep's ETA."""
    started = _unix_time(plan.get("started"))
    costs = CostModel({})  # the scheduler's pooled rule for models with nothing landed yet
    pooled = False  # some unit of a model that is not a baseline landed: the pool has a rate
    landed: dict[str, list[LandedUnit]] = defaultdict(list)
    left: dict[str, list[tuple[float | None, float | None]]] = defaultdict(list)
    for model, suites in plan.get("units", {}).items():
        for suite, keys in suites.items():
            sizes = plan.get("sizes", {}).get(model, {}).get(suite) or []
            for i, key in enumerate(keys):
                tokens, cost = (sizes[i][0], sizes[i][1]) if i < len(sizes) else (None, None)
                at = times.get(key)
                if key in done and at is not None and started is not None and at >= started \
                        and unit_seconds.get(key, 0.0) > 0:
                    landed[model].append(LandedUnit(tokens, unit_seconds[key], at))
                    if cost is not None and tokens and cost / tokens > 1.5 * NO_GPU_PARAMS_B:  # not baselines
                        costs.record_unit(model, cost, unit_seconds[key])
                        pooled = True
                if key not in done:
                    left[model].append((tokens, cost))
    progress = []
    for model in plan.get("units", {}):
        mine = left[model]
        fallback: tuple[float | None, str] | None = None
        earlier = run.rates.get(model)
        if mine and all(t is not None for t, _ in mine) and earlier is not None and earlier.tokens_per_second > 0:
            fallback = (sum(t or 0.0 for t, _ in mine) / earlier.tokens_per_second, "measured")
        elif mine and all(c is not None for _, c in mine) and pooled:
            fallback = (sum(c or 0.0 for _, c in mine) * costs.seconds_per_cost(model), "pooled")
        progress.append(model_progress(model, landed[model], [t for t, _ in mine], fallback, now, finished))
    all_landed = [u for units in landed.values() for u in units]
    return progress, (0.0 if finished else sweep_eta(progress, all_landed, now))


def _unix_time(stamp: str | None) -> float | None:
    """plan.json's `started` ('%Y-%m-%dT%H:%M:%S%z') as Unix time."""
    try:
        return datetime.strptime(stamp or "", "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None


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


def stopped_model(model: str, stop: dict[str, Any]) -> str:
    """The note for a model stopped by the per-model error cap (run.json last_run.stopped_models[model]), e.g.
    'model X stopped: 200 of 200 result rows were errors (100.0 %), above max_error_rate 0.5; top error (in 200
    rows): ValueError: ...; its remaining units were not run (a rerun resumes them)'."""
    rows, errors, cap = stop.get("rows"), stop.get("error_rows"), stop.get("max_error_rate")
    text = f"model {model} stopped"
    if isinstance(rows, int) and isinstance(errors, int):
        text += f": {errors} of {rows} result rows were errors ({_pct(errors, rows)})"
    if isinstance(cap, (int, float)):
        text += f", above max_error_rate {cap:g}"
    top = stop.get("top_error")
    if top:
        n = stop.get("top_error_rows")
        text += f"; top error{f' (in {n} rows)' if isinstance(n, int) else ''}: {top}"
    return text + "; its remaining units were not run (a rerun resumes them)"


def replaced_replicas(model: str, reasons: list[str]) -> str:
    """The note for a model whose replicas were lost while working and replaced (run.json last_run.replaced[model]),
    e.g. 'model X: 2 replicas replaced (engine died: ...; unit timed out after 30s (unit_timeout_s))'; a reason
    given more than once is counted ('x 3'), the first MAX_REASONS distinct ones shown."""
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[str(reason)] = counts.get(str(reason), 0) + 1
    shown = [f"{r} x {n}" if n > 1 else r for r, n in list(counts.items())[:MAX_REASONS]]
    if len(counts) > MAX_REASONS:
        shown.append(f"{len(counts) - MAX_REASONS} other reasons")
    n = len(reasons)
    return f"model {model}: {n} {'replica' if n == 1 else 'replicas'} replaced ({'; '.join(shown)})"


def pending_work(status: SweepStatus) -> str:
    """E.g. '12 units pending (3 with error rows to redo)'."""
    redo = f" ({status.units_with_errors} with error rows to redo)" if status.units_with_errors else ""
    return f"{status.units_pending} units pending{redo}"


def _pct(done: int, planned: int) -> str:
    return f"{100.0 * done / planned:.1f} %" if planned else "n/a"
