"""Leaderboards from one or several stores: join results with items, call each suite's pure metric, add the
statistics beside every number (rmorch.orchestrator.report.stats) and best-of-N curves (rmorch.suites.bestofn).
Computing only: rmorch.orchestrator.report.render writes what is computed here (JSON/CSV/Markdown, plots, HTML).

`OUT/leaderboard.json` is a list of {model, suite, score, sections, subsets, n_items, n_errors, n_missing} with
scores as fractions in [0, 1]. n_errors counts items with at least one error row; n_missing counts items without
results yet (an unfinished sweep); for judges both look at the base-order comparisons (permutation 0) only. Both
count as wrong in the official numbers, as the leaderboards would.
Entries of generative judges also carry `judge` (rmorch.suites.judging.judge_metrics): both-order accuracy, position
consistency, first-position rate, parse-failure and error rates beside the official number, and for judges with
probability verdicts `judge.calibration` (Brier, ECE, reliability bins, fragile rate; rmorch.suites.judging
.judge_calibration); other entries have no `judge` key. With statistics on (the default), entries carry `ci` ({level, score, sections, subsets}: bootstrap
percentile intervals), `rank` (1 = best score on the suite), `tied_with_best` (no significant difference from the
best, Holm-corrected paired bootstrap) and, on suites with pairs, `length_bias`.
`OUT/stats.json`: the bootstrap settings, every paired comparison, and the correlations between benchmark scores and
best-of-N gains across models. `OUT/bon.json`: the best-of-N curve of every model with pointwise scores on every pool.

Each model's entries read only the results of its current identity (run.json `models.<name>.identity`: settings,
provenance and seed; rmorch.orchestrator.plan.provenance); results of other identities that the store still holds
(earlier settings, a template or model edited since, other versions) are left out, and the entry says how many
identities that is (`other_identities`).

Several OUT directories (nightly sweeps) merge into one report: sources are read oldest first (run.json `started`)
and a (model, suite) pair found in several takes the newest; a suite must have the same items everywhere it is used.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rmorch.core.errors import UserError
from rmorch.orchestrator.report import stats as st
from rmorch.orchestrator.report.ensembles import ensemble_results
from rmorch.orchestrator.spec.parse import suite_class
from rmorch.orchestrator.spec.sweep_spec import EnsembleSpec
from rmorch.orchestrator.store.results import ManifestEntry, ResultStore
from rmorch.orchestrator.store.run_record import RUN_FILE, LastRun, ModelRecord, RunRecord, read_run
from rmorch.suites.bestofn import BonCurve, is_pool, pool_curve
from rmorch.suites.judging import judge_metrics

# What the metrics read of the result rows (suites' score, judge metrics, statistics, ensembles): the report reads
# only these columns of the results files.
RESULT_COLUMNS = ["item_id", "candidate", "order", "permutation", "score", "verdict", "probs", "parsed", "error",
                  "settings_hash", "identity"]


@dataclass
class LeaderboardEntry:
    model: str
    suite: str
    score: float
    sections: dict[str, float] = field(default_factory=dict)
    subsets: dict[str, float] = field(default_factory=dict)
    n_items: int = 0
    n_errors: int = 0
    n_missing: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    judge: dict[str, Any] | None = None  # generative judges only (rmorch.suites.judging.judge_metrics)
    ci: dict[str, Any] | None = None  # bootstrap intervals (rmorch.orchestrator.report.stats.intervals)
    rank: int | None = None
    tied_with_best: bool | None = None
    length_bias: dict[str, Any] | None = None
    # identities of the model's other results in the store for this suite (other settings, files, versions or
    # seed), which this entry does not use; None: none
    other_identities: int | None = None


@dataclass
class Report:
    entries: list[LeaderboardEntry]
    bon: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    run: RunRecord = field(default_factory=RunRecord)  # run.json of the source (merged over sources)


@dataclass
class _Scored:
    entry: LeaderboardEntry
    observed: Any  # the SuiteScore
    results: pa.Table


# ---- sources ----------------------------------------------------------------------------------------------


@dataclass
class Source:
    store: ResultStore
    run: RunRecord


def open_sources(dirs: list[str]) -> list[Source]:
    """The sweeps behind a report, oldest first; a merged report's directory stands for the sweeps it merged."""
    out: list[Source] = []
    for d in dirs:
        store = ResultStore(d)
        run = read_run(store)
        if run is None:
            raise UserError(f"{d}: no {RUN_FILE} here; is this the `out` directory of a sweep?")
        if run.merged_from:
            out.extend(open_sources(run.merged_from))
        else:
            out.append(Source(store, run))
    seen: dict[str, Source] = {}
    for src in out:
        seen.setdefault(src.store.root, src)
    return sorted(seen.values(), key=lambda s: s.run.started or "")


def merged_run(sources: list[Source]) -> RunRecord:
    """One record over the sources: per field the newest source that has it, models and suites of all (the newest
    settings of a model win); `merged_from` lists the sources when there are several."""
    if len(sources) == 1:
        return sources[0].run
    run = RunRecord()
    for src in sources:  # oldest first: a newer value replaces an older one
        for f in dataclasses.fields(RunRecord):
            value = getattr(src.run, f.name)
            if value is not None and f.name not in ("models", "suites"):
                setattr(run, f.name, value)
        run.models.update(src.run.models)
        run.suites.extend(s for s in src.run.suites if s not in run.suites)
    run.merged_from = [s.store.root for s in sources]
    model_seconds = {m: t for s in sources if s.run.last_run for m, t in s.run.last_run.model_seconds.items()}
    run.last_run = dataclasses.replace(run.last_run or LastRun(), model_seconds=model_seconds)
    return run


# ---- building ---------------------------------------------------------------------------------------------


def build_leaderboard(store: ResultStore) -> list[LeaderboardEntry]:
    """The official numbers only (no statistics): what a sweep prints as it ends."""
    return build_report([store.root], resamples=0).entries


def build_report(dirs: list[str], resamples: int = st.DEFAULT_RESAMPLES, level: float = st.DEFAULT_LEVEL) -> Report:
    """The report over one or several sweeps' OUT directories; the bootstrap is seeded by the (newest) run's seed."""
    sources = open_sources(dirs)
    run = merged_run(sources)
    config = st.BootstrapConfig(resamples=resamples, level=level, seed=run.seed or 0)
    report = Report(entries=[], run=run)
    paired: list[st.PairedResult] = []
    curves: dict[tuple[str, str], BonCurve] = {}
    for suite_name in run.suites:
        used = _suite_sources(sources, suite_name)
        if not used:
            continue
        items = used[-1].store.read_scoring_items(suite_name)  # no texts: metrics never read them
        suite = suite_class(suite_name, run.suite_kinds.get(suite_name))()
        scored = _score_suite(suite, suite_name, items, used, run)
        if not scored:
            continue
        report.entries.extend(s.entry for s in scored.values())
        if is_pool(items):
            for model, s in scored.items():
                curve = pool_curve(items, s.results)
                if curve is not None:
                    curves[(model, suite_name)] = curve
        for s in scored.values():
            s.entry.length_bias = st.length_bias(items, s.results)
        _rank(list(scored.values()))
        if config.resamples > 0:
            paired.extend(_suite_statistics(suite, items, scored, config))
    report.bon = [{"model": m, "suite": p, "k": c.k, "expected": c.expected, "oracle": c.oracle, "random": c.random,
                   "n_items": c.n_items} for (m, p), c in curves.items()]
    if config.resamples > 0:
        report.stats = {
            "bootstrap": config.describe(),
            "correction": "Holm-Bonferroni over all pairs of models within each suite (family-wise alpha 0.05)",
            "paired": [asdict(p) for p in paired],
            "correlations": _correlations(report.entries, curves, config.level),
        }
    return report


def _suite_sources(sources: list[Source], suite_name: str) -> list[Source]:
    """The sources that scored this suite, checked to hold the same items."""
    used = [s for s in sources if suite_name in s.run.suites and s.store.has_items(suite_name)]
    if len(used) > 1:
        first = used[0].store.read_items(suite_name)
        for other in used[1:]:
            if not other.store.read_items(suite_name).equals(first):
                raise UserError(f"suite '{suite_name}' has different items in {used[0].store.root} and "
                                f"{other.store.root} (another sample or data version): these runs cannot be merged")
    return used


def _score_suite(suite: Any, suite_name: str, items: pa.Table, used: list[Source],
                 run: RunRecord) -> dict[str, _Scored]:
    """Every model's entry on one suite: the newest source with results for the model wins; of its results, those of
    the model's current identity (run.json) only."""
    results_by_model: dict[str, pa.Table] = {}
    others: dict[str, int] = {}
    for src in used:
        by_pair: dict[str, list] = defaultdict(list)
        for entry in src.store.manifest():
            if entry.suite == suite_name:
                by_pair[entry.model].append(entry)
        for model, info in src.run.models.items():
            if model not in by_pair:
                continue
            entries, others[model] = current_entries(by_pair[model], info)
            results = src.store.read_results(entries, columns=RESULT_COLUMNS)
            results_by_model[model] = current_rows(results, info)
    scored = {m: _score(suite, m, items, r) for m, r in results_by_model.items()}
    for m, n in others.items():
        scored[m].entry.other_identities = n or None
    for name, data in run.ensembles.items():
        spec = EnsembleSpec(name, tuple(data["members"]), data["method"], data["penalty"])
        if all(m in results_by_model for m in spec.members):
            s = _score(suite, name, items, ensemble_results(spec, items, results_by_model, suite_name))
            s.entry.extra["ensemble"] = spec.to_dict()
            scored[name] = s
    return scored


def current_entries(entries: list[ManifestEntry], info: ModelRecord) -> tuple[list[ManifestEntry], int]:
    """The units of `entries` (one model's) of the model's current identity, and how many other identities the rest
    have. A record of an rmorch before identities (no `identity`): every unit, their rows picked by settings hash."""
    if info.identity is None:
        return entries, 0
    current = [e for e in entries if e.identity == info.identity]
    return current, len({e.identity for e in entries} - {info.identity})


def current_rows(results: pa.Table, info: ModelRecord) -> pa.Table:
    """The rows of `results` made under the model's current identity (by settings hash in records without one)."""
    if info.identity is not None:
        return results.filter(pc.equal(results.column("identity"), info.identity))
    return results.filter(pc.equal(results.column("settings_hash"), info.settings_hash))


def score_entry(suite: Any, model: str, items: pa.Table, results: pa.Table) -> LeaderboardEntry:
    return _score(suite, model, items, results).entry


def _score(suite: Any, model: str, items: pa.Table, results: pa.Table) -> _Scored:
    s = suite.score(items, results)
    item_ids = items.column("item_id").combine_chunks()
    # The rows the official number reads: pointwise rows and a judge's base-order comparisons (permutation 0);
    # errors and gaps in a judge's extra orders show in its `judge` metrics instead.
    perm = results.column("permutation")
    official = results.filter(pc.or_kleene(pc.is_null(perm), pc.equal(perm, 0)))
    errored = official.filter(pc.is_valid(official.column("error"))).column("item_id")
    n_errors = _count_in(errored, item_ids)  # distinct items, in Arrow (no Python set of a million ids)
    n_with_rows = _count_in(official.column("item_id"), item_ids)
    entry = LeaderboardEntry(
        model=model,
        suite=suite.name,
        score=s.score,
        sections=s.sections,
        subsets=s.subsets,
        n_items=s.n_items,
        n_errors=n_errors,
        n_missing=pc.count_distinct(item_ids).as_py() - n_with_rows,
        extra=s.extra,
        # Suites fill `judge` in their score(); for suites that do not (plugins), the generic metrics.
        judge=s.judge if s.judge is not None else judge_metrics(items, results, official=s.score),
    )
    return _Scored(entry, s, results)


def _count_in(ids: pa.ChunkedArray, item_ids: pa.Array) -> int:
    """How many distinct values of `ids` are among `item_ids`."""
    distinct = pc.unique(ids.combine_chunks())
    return int(pc.sum(pc.is_in(distinct, value_set=item_ids)).as_py() or 0)


def _rank(scored: list[_Scored]) -> None:
    ordered = sorted(scored, key=lambda s: -s.entry.score if not math.isnan(s.entry.score) else math.inf)
    for rank, s in enumerate(ordered, 1):
        s.entry.rank = rank


def _suite_statistics(suite: Any, items: pa.Table, scored: dict[str, _Scored],
                      config: st.BootstrapConfig) -> list[st.PairedResult]:
    """Intervals for every entry, paired tests between every two models, and the tie-with-best markers."""
    draws = st.draw_resamples(items, suite, config)
    dists = {m: st.bootstrap_scores(suite, items, s.results, s.observed, draws) for m, s in scored.items()}
    for m, s in scored.items():
        s.entry.ci = st.intervals(dists[m], config.level)
    models = list(scored)
    pairs: list[st.PairedResult] = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            diff = scored[a].entry.score - scored[b].entry.score
            ci, p = st.paired_test(dists[a].score, dists[b].score, diff, config.level)
            pairs.append(st.PairedResult(suite.name, a, b, diff, ci, p))
    for pr, adj in zip(pairs, st.holm([p.p for p in pairs])):
        pr.p_adjusted = adj
        pr.significant = not math.isnan(adj) and adj < 0.05
    best = next((s.entry.model for s in scored.values() if s.entry.rank == 1), None)
    for m, s in scored.items():
        if m == best:
            s.entry.tied_with_best = True
            continue
        pr = next((p for p in pairs if {p.model_a, p.model_b} == {m, best}), None)
        s.entry.tied_with_best = pr is not None and not pr.significant
    return pairs


def _correlations(entries: list[LeaderboardEntry], curves: dict[tuple[str, str], BonCurve],
                  level: float) -> list[dict[str, Any]]:
    """Across models: each benchmark's official score against each pool's best-of-N gain (expected at k = N minus
    random), the RewardBench 2 paper's headline analysis."""
    pools = sorted({p for _, p in curves})
    by_suite: dict[str, dict[str, float]] = defaultdict(dict)
    for e in entries:
        if not math.isnan(e.score):
            by_suite[e.suite][e.model] = e.score
    out = []
    for pool in pools:
        for bench, scores in by_suite.items():
            if bench == pool:
                continue
            models = [m for m in scores if (m, pool) in curves]
            if len(models) < 3:
                continue
            acc = [scores[m] for m in models]
            gain = [curves[(m, pool)].gain for m in models]
            out.append({"benchmark": bench, "pool": pool, "models": models, "accuracy": acc, "gain": gain,
                        **st.correlation(acc, gain, level)})
    return out
