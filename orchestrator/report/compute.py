"""Leaderboards from one or several stores: join results with items, call each suite's pure metric, add the
statistics beside every number (rmorch.orchestrator.report.stats), best-of-N curves (rmorch.suites.bestofn), and write JSON/CSV/Markdown.

`OUT/leaderboard.json` is a list of {model, suite, score, sections, subsets, n_items, n_errors, n_missing} with
scores as fractions in [0, 1]. n_errors counts items with at least one error row; n_missing counts items without
results yet (an unfinished sweep); for judges both look at the base-order comparisons (permutation 0) only. Both
count as wrong in the official numbers, as the leaderboards would.
Entries of generative judges also carry `judge` (rmorch.suites.judging.judge_metrics): both-order accuracy, position
consistency, first-position rate, parse-failure and error rates beside the official number; other entries have no
`judge` key. With statistics on (the default), entries carry `ci` ({level, score, sections, subsets}: bootstrap
percentile intervals), `rank` (1 = best score on the suite), `tied_with_best` (no significant difference from the
best, Holm-corrected paired bootstrap) and, on suites with pairs, `length_bias`.
`OUT/stats.json`: the bootstrap settings, every paired comparison, and the correlations between benchmark scores and
best-of-N gains across models. `OUT/bon.json`: the best-of-N curve of every model with pointwise scores on every pool.

Several OUT directories (nightly sweeps) merge into one report: sources are read oldest first (run.json `started`)
and a (model, suite) pair found in several takes the newest; a suite must have the same items everywhere it is used.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from rmorch.orchestrator.report import stats as st
from rmorch.core.errors import UserError
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.report.ensembles import EnsembleSpec, ensemble_results
from rmorch.orchestrator.spec.parse import suite_class
from rmorch.suites.bestofn import BonCurve, is_pool, pool_curve
from rmorch.suites.judging import judge_metrics


# What the metrics read of the result rows (suites' score, judge metrics, statistics, ensembles): the report reads
# only these columns of the results files.
RESULT_COLUMNS = ["item_id", "candidate", "order", "permutation", "score", "verdict", "parsed", "error",
                  "settings_hash"]


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


@dataclass
class Report:
    entries: list[LeaderboardEntry]
    bon: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)  # run.json of the source (merged over sources)


@dataclass
class _Scored:
    entry: LeaderboardEntry
    observed: Any  # the SuiteScore
    results: pa.Table


# ---- sources ----------------------------------------------------------------------------------------------


@dataclass
class Source:
    store: ResultStore
    run: dict[str, Any]


def open_sources(dirs: list[str]) -> list[Source]:
    """The sweeps behind a report, oldest first; a merged report's directory stands for the sweeps it merged."""
    out: list[Source] = []
    for d in dirs:
        store = ResultStore(d)
        if not store.exists("run.json"):
            raise UserError(f"{d}: no run.json here; is this the `out` directory of a sweep?")
        try:
            run = store.read_json("run.json")
        except (ValueError, UnicodeDecodeError) as e:
            raise UserError(f"{store.path('run.json')}: unreadable run metadata ({e}); rerun the sweep (it "
                            f"resumes from the results) to write it again") from None
        if not isinstance(run, dict):
            raise UserError(f"{store.path('run.json')}: not a JSON object; rerun the sweep to write it again")
        if run.get("merged_from"):
            out.extend(open_sources(run["merged_from"]))
        else:
            out.append(Source(store, run))
    seen: dict[str, Source] = {}
    for src in out:
        seen.setdefault(src.store.root, src)
    return sorted(seen.values(), key=lambda s: s.run.get("started", ""))


def merged_run(sources: list[Source]) -> dict[str, Any]:
    """One run.json view over the sources (newest wins per key); `merged_from` lists them when there are several."""
    run: dict[str, Any] = {}
    models: dict[str, Any] = {}
    model_seconds: dict[str, float] = {}
    suites: list[str] = []
    for src in sources:
        run.update({k: v for k, v in src.run.items() if k not in ("models", "suites")})
        models.update(src.run.get("models", {}))
        model_seconds.update(src.run.get("last_run", {}).get("model_seconds", {}))
        suites.extend(s for s in src.run.get("suites", []) if s not in suites)
    run["models"], run["suites"] = models, suites
    if len(sources) > 1:
        run["merged_from"] = [s.store.root for s in sources]
        run.setdefault("last_run", {})["model_seconds"] = model_seconds
    return run


# ---- building ---------------------------------------------------------------------------------------------


def build_leaderboard(store: ResultStore) -> list[LeaderboardEntry]:
    """The official numbers only (no statistics): what a sweep prints as it ends."""
    return build_report([store.root], resamples=0).entries


def build_report(dirs: list[str], resamples: int = st.DEFAULT_RESAMPLES, level: float = st.DEFAULT_LEVEL) -> Report:
    """The report over one or several sweeps' OUT directories; the bootstrap is seeded by the (newest) run's seed."""
    sources = open_sources(dirs)
    run = merged_run(sources)
    config = st.BootstrapConfig(resamples=resamples, level=level, seed=int(run.get("seed", 0) or 0))
    report = Report(entries=[], run=run)
    paired: list[st.PairedResult] = []
    curves: dict[tuple[str, str], BonCurve] = {}
    for suite_name in run["suites"]:
        used = _suite_sources(sources, suite_name)
        if not used:
            continue
        items = used[-1].store.read_scoring_items(suite_name)  # no texts: metrics never read them
        suite = suite_class(suite_name, run.get("suite_kinds", {}).get(suite_name))()
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
    used = [s for s in sources if suite_name in s.run.get("suites", []) and s.store.has_items(suite_name)]
    if len(used) > 1:
        first = used[0].store.read_items(suite_name)
        for other in used[1:]:
            if not other.store.read_items(suite_name).equals(first):
                raise UserError(f"suite '{suite_name}' has different items in {used[0].store.root} and "
                                f"{other.store.root} (another sample or data version): these runs cannot be merged")
    return used


def _score_suite(suite: Any, suite_name: str, items: pa.Table, used: list[Source],
                 run: dict[str, Any]) -> dict[str, _Scored]:
    """Every model's entry on one suite: the newest source with results for the model wins."""
    results_by_model: dict[str, pa.Table] = {}
    for src in used:
        by_pair: dict[str, list] = defaultdict(list)
        for entry in src.store.manifest():
            if entry.suite == suite_name:
                by_pair[entry.model].append(entry)
        for model, info in src.run.get("models", {}).items():
            if model not in by_pair:
                continue
            results = src.store.read_results(by_pair[model], columns=RESULT_COLUMNS)
            results = results.filter(pc.equal(results.column("settings_hash"), info["settings_hash"]))
            results_by_model[model] = results
    scored = {m: _score(suite, m, items, r) for m, r in results_by_model.items()}
    for name, data in run.get("ensembles", {}).items():
        spec = EnsembleSpec(name, tuple(data["members"]), data["method"], data["penalty"])
        if all(m in results_by_model for m in spec.members):
            s = _score(suite, name, items, ensemble_results(spec, items, results_by_model, suite_name))
            s.entry.extra["ensemble"] = spec.to_dict()
            scored[name] = s
    return scored


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


# ---- outputs -----------------------------------------------------------------------------------------------


def write_report(out: str, report: Report) -> list[str]:
    """Everything a report is, under `out`: leaderboard.{json,csv,md}, bon.json, stats.json, plots/*.png,
    report.html (and, for a merge of several sweeps, a run.json naming them). Returns the files written."""
    from rmorch.orchestrator.report.html import REPORT_FILE, write_html_report
    from rmorch.orchestrator.report.plots import bon_plot, correlation_plot, plot_name

    store = ResultStore(out)
    written = ["leaderboard.json", "leaderboard.csv", "leaderboard.md"]
    write_leaderboard(store, report.entries)
    by_pool: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in report.bon:
        by_pool[c["suite"]].append(c)
    for pool, curves in by_pool.items():
        rel = f"plots/bon-{plot_name(pool)}.png"
        store.write_atomic(rel, lambda tmp, pool=pool, curves=curves: bon_plot(pool, curves, tmp))
        written.append(rel)
    store.write_json("bon.json", _nan_to_none(report.bon))
    written.append("bon.json")
    if report.stats:
        for corr in report.stats["correlations"]:
            rel = f"plots/corr-{plot_name(corr['benchmark'], corr['pool'])}.png"
            store.write_atomic(rel, lambda tmp, corr=corr: correlation_plot(corr, tmp))
            corr["plot"] = rel
            written.append(rel)
        store.write_json("stats.json", _nan_to_none(report.stats))
        written.append("stats.json")
    if report.run.get("merged_from"):
        store.write_json("run.json", report.run)
        written.append("run.json")
    write_html_report(out)
    written.append(REPORT_FILE)
    return written


def write_leaderboard(store: ResultStore, entries: list[LeaderboardEntry]) -> None:
    store.write_json("leaderboard.json", [_json_entry(e) for e in entries])
    store.write_text("leaderboard.csv", to_csv(entries))
    store.write_text("leaderboard.md", to_markdown(entries))


def _json_entry(e: LeaderboardEntry) -> dict[str, Any]:
    d = asdict(e)
    if not d["extra"]:
        del d["extra"]
    for key in ("judge", "ci", "rank", "tied_with_best", "length_bias"):
        if d[key] is None:
            del d[key]
    return _nan_to_none(d)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def to_csv(entries: list[LeaderboardEntry]) -> str:
    """One row per (model, suite); sections, subsets and judge metrics as `section:NAME` / `subset:NAME` /
    `judge:NAME` columns (lists as `judge:NAME[k]`; empty for entries that are not judges)."""
    extra_cols: list[str] = []
    rows: list[dict[str, Any]] = []
    for e in entries:
        values = {
            **{f"section:{k}": v for k, v in e.sections.items()},
            **{f"subset:{k}": v for k, v in e.subsets.items()},
            **_judge_cells(e.judge),
        }
        rows.append(values)
        for col in values:
            if col not in extra_cols:
                extra_cols.append(col)
    # judge columns after the section and subset columns, in first-seen order
    extra_cols.sort(key=lambda c: c.startswith("judge:"))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "suite", "score", "n_items", "n_errors", "n_missing", *extra_cols])
    for e, values in zip(entries, rows):
        w.writerow([e.model, e.suite, _fmt_num(e.score), e.n_items, e.n_errors, e.n_missing,
                    *[_fmt_num(values.get(c)) for c in extra_cols]])
    return buf.getvalue()


def _judge_cells(judge: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (judge or {}).items():
        if isinstance(v, list):
            out.update({f"judge:{k}[{i}]": x for i, x in enumerate(v)})
        else:
            out[f"judge:{k}"] = v
    return out


def _fmt_num(v: float | int | None) -> str:
    if isinstance(v, bool) or isinstance(v, int):
        return str(int(v))
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6f}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{100 * v:.1f}"


def _by_suite(entries: list[LeaderboardEntry]) -> dict[str, list[LeaderboardEntry]]:
    out: dict[str, list[LeaderboardEntry]] = defaultdict(list)
    for e in entries:
        out[e.suite].append(e)
    for rows in out.values():
        rows.sort(key=lambda e: -e.score if not math.isnan(e.score) else math.inf)
    return out


# The judge summary beside the official number in the printed and Markdown leaderboards (suites with judges).
JUDGE_COLUMNS = {
    "both orders": "both_orders_accuracy",
    "consistency": "position_consistency",
    "first pos": "first_position_rate",
    "parse fail": "parse_failure_rate",
}


def _judge_summary(rows: list[LeaderboardEntry], e: LeaderboardEntry) -> list[str]:
    """The judge cells of one row ([] when no entry of the suite is a judge; "-" for the non-judges)."""
    if not any(r.judge for r in rows):
        return []
    if not e.judge:
        return ["-"] * len(JUDGE_COLUMNS)
    return [_pct(e.judge.get(key)) for key in JUDGE_COLUMNS.values()]


def to_markdown(entries: list[LeaderboardEntry]) -> str:
    parts = []
    for suite, rows in _by_suite(entries).items():
        sections = list(rows[0].sections) or list(rows[0].subsets)
        judge_head = list(JUDGE_COLUMNS) if any(r.judge for r in rows) else []
        head = ["model", "score", *sections, "items", "errors", *judge_head]
        parts.append(f"## {suite}\n")
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + "---|" * len(head))
        for e in rows:
            vals = e.sections if e.sections else e.subsets
            cells = [e.model, _pct(e.score), *[_pct(vals.get(s)) for s in sections], str(e.n_items), str(e.n_errors),
                     *_judge_summary(rows, e)]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


def print_leaderboard(entries: list[LeaderboardEntry], console: Console) -> None:
    """Per suite: the official numbers, then (suites with judges) a second table of the judge metrics, so that
    neither gets too wide for a terminal."""
    for suite, rows in _by_suite(entries).items():
        sections = list(rows[0].sections) or list(rows[0].subsets)
        table = Table(title=f"{suite} (scores in %)", title_justify="left")
        table.add_column("model", no_wrap=True)
        table.add_column("score", justify="right", style="bold")
        for s in sections:
            table.add_column(s, justify="right")
        table.add_column("items", justify="right")
        table.add_column("errors", justify="right")
        for e in rows:
            vals = e.sections if e.sections else e.subsets
            missing = f" (+{e.n_missing} missing)" if e.n_missing else ""
            table.add_row(e.model, _pct(e.score), *[_pct(vals.get(s)) for s in sections],
                          f"{e.n_items}{missing}", str(e.n_errors))
        console.print(table)
        judges = [e for e in rows if e.judge]
        if judges:
            jt = Table(title=f"{suite}: judges, beside the official score (in %)", title_justify="left")
            jt.add_column("model", no_wrap=True)
            jt.add_column("official", justify="right", style="bold")
            for name in JUDGE_COLUMNS:
                jt.add_column(name, justify="right")
            jt.add_column("orders", justify="right")
            for e in judges:
                jt.add_row(e.model, _pct(e.score), *_judge_summary(rows, e), str(e.judge.get("n_orders", "")))
            console.print(jt)
