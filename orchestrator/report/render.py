"""The report written out: leaderboard.{json,csv,md}, bon.json, stats.json, plots and report.html under a store
(`write_report`), and the leaderboard printed for people (`print_leaderboard`). Everything here renders what
rmorch.orchestrator.report.compute computed; nothing is computed again.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from rmorch.orchestrator.report.compute import LeaderboardEntry, Report
from rmorch.orchestrator.report.html import REPORT_FILE, verdicts_read, write_html_report
from rmorch.orchestrator.report.plots import (
    bon_plot,
    calibration_plot_file,
    correlation_plot,
    plot_name,
    reliability_plot,
)
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import write_run
from rmorch.orchestrator.store.status import several_identities
from rmorch.suites.judging import CALIBRATION_BINS, FRAGILE_MARGIN


def write_report(out: str, report: Report) -> list[str]:
    """Everything a report is, under `out`: leaderboard.{json,csv,md}, bon.json, stats.json, plots/*.png,
    report.html (and, for a merge of several sweeps, a run.json naming them). Returns the files written."""
    store = ResultStore(out)
    written = ["leaderboard.json", "leaderboard.csv", "leaderboard.md"]
    write_leaderboard(store, report.entries)
    for e, cal in calibrated(report.entries):
        rel = calibration_plot_file(e.model, e.suite)
        store.write_atomic(rel, lambda tmp, e=e, cal=cal: reliability_plot(e.model, e.suite, cal, tmp))
        written.append(rel)
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
    if report.run.merged_from:
        write_run(store, report.run)
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
    for key in ("judge", "ci", "rank", "tied_with_best", "length_bias", "other_identities"):
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
    `judge:NAME` columns (lists as `judge:NAME[k]`, the numbers of a nested object as `judge:NAME.KEY`, e.g.
    `judge:calibration.brier`; empty for entries that are not judges). The reliability bins are in the JSON only."""
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
        elif isinstance(v, dict):  # calibration: its numbers (its list of reliability bins stays in the JSON)
            out.update({f"judge:{k}.{k2}": x for k2, x in v.items() if isinstance(x, (int, float)) or x is None})
        else:
            out[f"judge:{k}"] = v
    return out


def _fmt_num(v: float | str | None) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, int)):
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
    """The judge cells of one row ([] when no entry of the suite is a judge; "-" for the non-judges): the rates of
    JUDGE_COLUMNS, then how many verdicts were read and how (`verdicts_read`)."""
    if not any(r.judge for r in rows):
        return []
    if not e.judge:
        return ["-"] * (len(JUDGE_COLUMNS) + 1)
    return [_pct(e.judge.get(key)) for key in JUDGE_COLUMNS.values()] + [verdicts_read(e.judge)]



# Calibration of probability verdicts (rmorch.suites.judging.judge_calibration), in the printed and Markdown reports
CALIBRATION_TITLE = "Calibration of probability verdicts"
CALIBRATION_HEAD = ["judge", "suite", "Brier", "ECE", "fragile %", "n"]
CALIBRATION_NOTE = (
    "p = the judge's probability, averaged over the orders it was shown, that the candidate shown first in the base "
    "order wins; y = whether that candidate is correct. Brier = mean (p - y)^2 (lower is better); ECE = expected "
    f"calibration error over {CALIBRATION_BINS} equal-width bins of p; fragile = share of judgments whose two most "
    f"probable candidates are less than {FRAGILE_MARGIN:g} apart; n = items with probabilities. Judges without "
    "probability verdicts are not listed."
)


def calibrated(entries: list[LeaderboardEntry]) -> list[tuple[LeaderboardEntry, dict[str, Any]]]:
    """The entries of judges with probability verdicts and their calibration, suite by suite, best score first."""
    return [(e, e.judge["calibration"]) for rows in _by_suite(entries).values() for e in rows
            if e.judge and isinstance(e.judge.get("calibration"), dict)]


def _calibration_cells(e: LeaderboardEntry, cal: dict[str, Any]) -> list[str]:
    return [e.model, e.suite, _dec(cal.get("brier")), _dec(cal.get("ece")), _pct(cal.get("fragile_rate")),
            str(cal.get("n_prob_items", ""))]


def _dec(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.3f}"


def to_markdown(entries: list[LeaderboardEntry]) -> str:
    parts = []
    for suite, rows in _by_suite(entries).items():
        sections = list(rows[0].sections) or list(rows[0].subsets)
        judge_head = [*JUDGE_COLUMNS, "verdicts read"] if any(r.judge for r in rows) else []
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
    rows = calibrated(entries)
    if rows:
        parts.append(f"## {CALIBRATION_TITLE}\n")
        parts.append(CALIBRATION_NOTE + "\n")
        parts.append("| " + " | ".join(CALIBRATION_HEAD) + " |")
        parts.append("|" + "---|" * len(CALIBRATION_HEAD))
        parts += ["| " + " | ".join(_calibration_cells(e, cal)) + " |" for e, cal in rows]
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
            jt.add_column("verdicts read", justify="right")
            jt.add_column("orders", justify="right")
            for e in judges:
                jt.add_row(e.model, _pct(e.score), *_judge_summary(rows, e), str(e.judge.get("n_orders", "")))
            console.print(jt)
    cal_rows = calibrated(entries)
    if cal_rows:
        ct = Table(title=CALIBRATION_TITLE, title_justify="left")
        for name in CALIBRATION_HEAD:
            ct.add_column(name, justify="left" if name in ("judge", "suite") else "right",
                          no_wrap=name in ("judge", "suite"))
        for e, cal in cal_rows:
            ct.add_row(*_calibration_cells(e, cal))
        console.print(ct)
        console.print(CALIBRATION_NOTE, highlight=False)
    for model, n in stale_identities(entries).items():
        console.print(several_identities(model, n), highlight=False, soft_wrap=True, markup=False)


def stale_identities(entries: list[LeaderboardEntry]) -> dict[str, int]:
    """Per model whose store holds results of other identities than the current one: how many identities in all."""
    most: dict[str, int] = {}
    for e in entries:
        if e.other_identities:
            most[e.model] = max(most.get(e.model, 1), e.other_identities + 1)
    return most
