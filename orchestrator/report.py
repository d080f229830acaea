"""Leaderboards from the store: join results with items, call each suite's pure metric, write JSON/CSV/Markdown.

`OUT/leaderboard.json` is a list of {model, suite, score, sections, subsets, n_items, n_errors, n_missing} with
scores as fractions in [0, 1]. n_errors counts items with at least one error row; n_missing counts items without
results yet (an unfinished sweep). Both count as wrong in the official numbers, as the leaderboards would.
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

from orchestrator.errors import UserError
from orchestrator.store import ResultStore
from suites import get_suite_class


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


def build_leaderboard(store: ResultStore) -> list[LeaderboardEntry]:
    if not store.exists("run.json"):
        raise UserError(f"{store.root}: no run.json here; is this the `out` directory of a sweep?")
    run = store.read_json("run.json")
    by_pair: dict[tuple[str, str], list] = defaultdict(list)
    for entry in store.manifest():
        by_pair[(entry.model, entry.suite)].append(entry)
    entries = []
    for suite_name in run["suites"]:
        items = store.read_items(suite_name)
        suite = get_suite_class(suite_name)()
        for model, info in run["models"].items():
            results = store.read_results(by_pair.get((model, suite_name), []))
            results = results.filter(pc.equal(results.column("settings_hash"), info["settings_hash"]))
            if results.num_rows == 0 and not by_pair.get((model, suite_name)):
                continue
            entries.append(score_entry(suite, model, items, results))
    return entries


def score_entry(suite: Any, model: str, items: pa.Table, results: pa.Table) -> LeaderboardEntry:
    s = suite.score(items, results)
    item_ids = set(items.column("item_id").to_pylist())
    errored = results.filter(pc.is_valid(results.column("error"))).column("item_id").to_pylist()
    n_errors = len(set(errored) & item_ids)
    n_with_rows = len(set(results.column("item_id").to_pylist()) & item_ids)
    return LeaderboardEntry(
        model=model,
        suite=suite.name,
        score=s.score,
        sections=s.sections,
        subsets=s.subsets,
        n_items=s.n_items,
        n_errors=n_errors,
        n_missing=len(item_ids) - n_with_rows,
        extra=s.extra,
    )


# ---- outputs -----------------------------------------------------------------------------------------------


def write_leaderboard(store: ResultStore, entries: list[LeaderboardEntry]) -> None:
    store.write_json("leaderboard.json", [_json_entry(e) for e in entries])
    store.write_text("leaderboard.csv", to_csv(entries))
    store.write_text("leaderboard.md", to_markdown(entries))


def _json_entry(e: LeaderboardEntry) -> dict[str, Any]:
    d = asdict(e)
    if not d["extra"]:
        del d["extra"]
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
    """One row per (model, suite); sections and subsets as `section:NAME` / `subset:NAME` columns."""
    extra_cols: list[str] = []
    for e in entries:
        for prefix, d in (("section", e.sections), ("subset", e.subsets)):
            for name in d:
                col = f"{prefix}:{name}"
                if col not in extra_cols:
                    extra_cols.append(col)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "suite", "score", "n_items", "n_errors", "n_missing", *extra_cols])
    for e in entries:
        values = {**{f"section:{k}": v for k, v in e.sections.items()}, **{f"subset:{k}": v for k, v in e.subsets.items()}}
        w.writerow([e.model, e.suite, _fmt_num(e.score), e.n_items, e.n_errors, e.n_missing,
                    *[_fmt_num(values.get(c)) for c in extra_cols]])
    return buf.getvalue()


def _fmt_num(v: float | None) -> str:
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


def to_markdown(entries: list[LeaderboardEntry]) -> str:
    parts = []
    for suite, rows in _by_suite(entries).items():
        sections = list(rows[0].sections) or list(rows[0].subsets)
        head = ["model", "score", *sections, "items", "errors"]
        parts.append(f"## {suite}\n")
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + "---|" * len(head))
        for e in rows:
            vals = e.sections if e.sections else e.subsets
            cells = [e.model, _pct(e.score), *[_pct(vals.get(s)) for s in sections], str(e.n_items), str(e.n_errors)]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


def print_leaderboard(entries: list[LeaderboardEntry], console: Console) -> None:
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
