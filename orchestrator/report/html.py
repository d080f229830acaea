"""`OUT/report.html`: the one page a post-training team reads after an overnight sweep.

A single self-contained file (inline CSS and JS, plots embedded as base64 PNG data URIs, a Content-Security-Policy
that forbids every network load), so it can be mailed, attached to a ticket or opened from a laptop with no access
to the cluster. It draws, from the files a sweep leaves in OUT:

- leaderboard.json: per suite a sortable leaderboard (score with its 95 % CI, rank, "tied with the best", the
  `length` baseline highlighted as the bar to clear), sections and subsets, judge position bias, the calibration
  of probability verdicts (with plots/calib-<model>--<suite>.png; only when a judge has them), length bias;
- stats.json: paired differences, correlations between benchmark accuracy and best-of-N gain (with plots/*.png);
- bon.json: best-of-N curves (plots/bon-<suite>.png) and their k = N numbers;
- run.json, spec.yaml: versions, seed, hardware, time per model, sweep duration, the spec itself.

Reading (`read_report_inputs`) is apart from rendering (`render_html`, a pure function of `ReportInputs`), so the
page can be tested from fixture dicts. Any input may be missing or come from an older rmorch: its sections are left
out with a short note, never a crash, because the report is the last step of a long run. Every string taken from the
data (model, suite and subset names, spec text) is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
import pathlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rmorch.orchestrator.report.plots import calibration_plot_file
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.store.run_record import LastRun, ModelRecord, RunRecord
from rmorch.orchestrator.store.status import several_identities
from rmorch.suites.judging import CALIBRATION_BINS, FRAGILE_MARGIN

logger = logging.getLogger(__name__)

REPORT_FILE = "report.html"
# Nothing but the inline style and script and data: images may load: the page works offline and leaks nothing.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
BASELINE_MODEL = "length"  # the reference row every reward model should beat


@dataclass
class ReportInputs:
    """Everything the page is drawn from; None = that file is absent (or unreadable, see `problems`)."""

    title: str
    leaderboard: list[dict[str, Any]] | None = None
    bon: list[dict[str, Any]] | None = None
    stats: dict[str, Any] | None = None
    run: RunRecord | None = None
    spec_text: str | None = None
    images: dict[str, str] = field(default_factory=dict)  # "plots/NAME.png" -> data URI
    problems: list[str] = field(default_factory=list)  # files that exist but could not be read


# ---- reading ------------------------------------------------------------------------------------------------


def read_report_inputs(out_dir: str) -> ReportInputs:
    """Read what a sweep left in `out_dir` (a local directory or a store URI, through rmorch.orchestrator.store.results); an
    absent file stays None, an unreadable one is noted in `problems`."""
    store = ResultStore(out_dir)
    inputs = ReportInputs(title=report_title(out_dir))
    expected: dict[str, type] = {"leaderboard": list, "bon": list, "stats": dict, "run": dict}
    for name, kind in expected.items():
        rel = f"{name}.json"
        try:
            if not store.exists(rel):
                continue
            data = json.loads(store.read_text(rel))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            inputs.problems.append(f"{rel}: {exc}")
            continue
        if not isinstance(data, kind):
            inputs.problems.append(f"{rel}: expected a JSON {kind.__name__}, found {type(data).__name__}")
            continue
        setattr(inputs, name, RunRecord.from_json(data) if name == "run" else data)
    try:
        if store.exists("spec.yaml"):
            inputs.spec_text = store.read_bytes("spec.yaml").decode("utf-8", errors="replace")
        for rel in sorted(store.listing("plots")):
            if posixpath.dirname(rel) == "plots" and rel.endswith(".png"):
                encoded = base64.b64encode(store.read_bytes(rel)).decode("ascii")
                inputs.images[rel] = f"data:image/png;base64,{encoded}"
    except OSError as exc:
        inputs.problems.append(str(exc))
    return inputs


def report_title(out_dir: str) -> str:
    """The last path segment of OUT (a local directory is resolved first, so `.` gets its real name)."""
    base = out_dir.partition("?")[0].rstrip("/")
    if "://" not in base:
        return pathlib.Path(base or ".").resolve().name
    return posixpath.basename(base) or base


def write_html_report(out_dir: str) -> str:
    """Write OUT/report.html from the files in OUT (whole or not at all: a reader never sees half a page); returns
    where it is."""
    store = ResultStore(out_dir)
    store.write_text(REPORT_FILE, render_html(read_report_inputs(out_dir)))
    return store.path(REPORT_FILE)


# ---- small formatting helpers -----------------------------------------------------------------------------------


def esc(value: Any) -> str:
    """Text from the data, safe inside element content and quoted attributes."""
    return html.escape(str(value), quote=True)


def num(value: Any) -> float | None:
    """A finite number, or None for null, NaN, strings, booleans and anything else a file might hold."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def pct(value: Any) -> str:
    v = num(value)
    return "—" if v is None else f"{100 * v:.1f}"


def dec(value: Any, digits: int = 3) -> str:
    v = num(value)
    return "—" if v is None else f"{v:.{digits}f}"


def interval(pair: Any, fmt: Callable[[Any], str] = pct) -> str:
    """"[lo, hi]" of a two-number list, or "" when there is none."""
    if not isinstance(pair, (list, tuple)) or len(pair) != 2 or num(pair[0]) is None or num(pair[1]) is None:
        return ""
    return f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def cell(text: str, sort_value: Any = None, cls: str = "", style: str = "") -> str:
    """A <td> holding already-escaped `text`; `sort_value` (number or text) is what the column sort compares."""
    attrs = f' class="{cls}"' if cls else ""
    if style:
        attrs += f' style="{esc(style)}"'
    if sort_value is not None:
        attrs += f' data-v="{esc(sort_value)}"'
    return f"<td{attrs}>{text}</td>"


def num_cell(value: Any, fmt: Callable[[Any], str] = pct, ci: Any = None, cls: str = "num", style: str = "") -> str:
    """A number formatted by `fmt`, optionally followed by its interval; sorts by the raw value (none = last)."""
    v = num(value)
    text = esc(fmt(value))
    if ci is not None and interval(ci, fmt):
        text += f' <span class="ci">{esc(interval(ci, fmt))}</span>'
    return cell(text, "" if v is None else repr(v), cls, style)


def count(value: Any) -> str:
    return dec(value, 0)


def table(headers: list[tuple[str, str]], rows: list[str], cls: str = "sortable") -> str:
    """A table whose header buttons sort it; headers are (label, "num" | "text")."""
    head = "".join(
        f'<th data-type="{kind}" class="{kind}"><button type="button">{esc(label)}</button></th>'
        for label, kind in headers
    )
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def image(inputs: ReportInputs, rel_path: str, alt: str) -> str:
    uri = inputs.images.get(posixpath.normpath(rel_path))
    if uri is None:
        return note(f"{rel_path} is not in this run: plot left out.")
    return f'<figure><img src="{uri}" alt="{esc(alt)}"><figcaption>{esc(rel_path)}</figcaption></figure>'


def by_suite(entries: list[dict[str, Any]], suite_order: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Entries grouped per suite (run.json's order first), best first: by rank, else by score."""
    groups: dict[str, list[dict[str, Any]]] = {s: [] for s in suite_order}
    for e in entries:
        groups.setdefault(str(e.get("suite", "?")), []).append(e)

    def order(e: dict[str, Any]) -> tuple[float, float]:
        rank, score = num(e.get("rank")), num(e.get("score"))
        return (rank if rank is not None else math.inf, -score if score is not None else math.inf)

    return {s: sorted(rows, key=order) for s, rows in groups.items() if rows}


# ---- sections -------------------------------------------------------------------------------------------------


def leaderboard_section(inputs: ReportInputs) -> str:
    entries = [e for e in as_list(inputs.leaderboard) if isinstance(e, dict)]
    if not entries:
        return note("No leaderboard.json in this run (or it is empty): leaderboard left out.")
    with_ci = next((e for e in entries if isinstance(e.get("ci"), dict)), None)
    if with_ci is None:
        uncertainty = "No confidence intervals or ranks in this leaderboard.json (an older run). "
    else:
        level = num(with_ci["ci"].get("level")) or 0.95
        uncertainty = (
            f"In brackets, the {100 * level:.0f} % bootstrap confidence interval. "
            '<span class="badge best">best</span> marks rank 1, <span class="badge tied">tied</span> a model whose '
            "difference from the best is not statistically significant. "
        )
    parts = [(
        f'<p class="lead">Scores in %. {uncertainty}The highlighted <b>length</b> row (score = response length) is '
        "the bar every reward model should clear; <i>Δ vs length</i> is the difference in points, with * when "
        "stats.json's paired test finds it significant. Click a column header to sort.</p>"
    )]
    suites = [str(s) for s in inputs.run.suites] if inputs.run is not None else []
    paired = [p for p in as_list(as_dict(inputs.stats).get("paired")) if isinstance(p, dict)]
    for suite, rows in by_suite(entries, suites).items():
        parts.append(f'<h3 id="lb-{esc(suite)}">{esc(suite)}</h3>')
        parts.append(suite_leaderboard(suite, rows, paired))
    most: dict[str, int] = {}
    for e in entries:  # leaderboard.json's `other_identities` (rmorch.orchestrator.report.compute)
        others = num(e.get("other_identities"))
        if others:
            most[str(e.get("model"))] = max(most.get(str(e.get("model")), 1), int(others) + 1)
    parts.extend(note(several_identities(model, n)) for model, n in most.items())
    return "".join(parts)


def suite_leaderboard(suite: str, rows: list[dict[str, Any]], paired: list[dict[str, Any]]) -> str:
    baseline = next((e for e in rows if e.get("model") == BASELINE_MODEL), None)
    base_score = num(baseline.get("score")) if baseline else None
    body = []
    for e in rows:
        model = str(e.get("model", "?"))
        rank = num(e.get("rank"))
        standing = 0 if rank == 1 else 1 if e.get("tied_with_best") is True else 2  # sort key: best, tied, rest
        marks = ['<span class="badge best">best</span>', '<span class="badge tied">tied</span>', ""][standing]
        name, cls = esc(model), ""
        if model == BASELINE_MODEL:
            name += ' <span class="badge base">baseline</span>'
            cls = ' class="baseline"'
        score = num(e.get("score"))
        gain = None if base_score is None or score is None or model == BASELINE_MODEL else score - base_score
        gain_text = "" if gain is None else f"{100 * gain:+.1f}" + significance_mark(paired, suite, model)
        errors, missing = num(e.get("n_errors")), num(e.get("n_missing"))
        body.append(
            f"<tr{cls}>"
            + num_cell(rank, count, cls="num rank")
            + cell(name, model, "model")
            + num_cell(score, ci=as_dict(e.get("ci")).get("score"), cls="num score")
            + cell(marks, standing)
            + cell(esc(gain_text), "" if gain is None else repr(gain), "num")
            + num_cell(e.get("n_items"), count)
            + num_cell(errors, count, cls="num warn" if errors else "num")
            + num_cell(missing, count, cls="num warn" if missing else "num")
            + "</tr>"
        )
    headers = [("rank", "num"), ("model", "text"), ("score [CI]", "num"), ("vs best", "text"),
               (f"Δ vs {BASELINE_MODEL}", "num"), ("items", "num"), ("errors", "num"), ("missing", "num")]
    return table(headers, body, "sortable leaderboard")


def significance_mark(paired: list[dict[str, Any]], suite: str, model: str) -> str:
    """" *" when stats.json's paired test of `model` vs the baseline on this suite is significant (corrected)."""
    for p in paired:
        if p.get("suite") == suite and {p.get("model_a"), p.get("model_b")} == {model, BASELINE_MODEL}:
            return " *" if p.get("significant") is True else ""
    return ""


def breakdown_section(inputs: ReportInputs) -> str:
    """Per suite, collapsible: sections and subsets (rows) by model (columns), and the paired differences."""
    entries = [e for e in as_list(inputs.leaderboard) if isinstance(e, dict)]
    if not entries:
        return note("No leaderboard.json: per-section and per-subset tables left out.")
    suites = [str(s) for s in inputs.run.suites] if inputs.run is not None else []
    stats = as_dict(inputs.stats)
    paired = [p for p in as_list(stats.get("paired")) if isinstance(p, dict)]
    parts = []
    for suite, rows in by_suite(entries, suites).items():
        inner = [breakdown_table(rows, "sections"), breakdown_table(rows, "subsets"),
                 paired_table([p for p in paired if p.get("suite") == suite], str(stats.get("correction", "")))]
        body = "".join(x for x in inner if x) or note("No sections, subsets or paired tests for this suite.")
        parts.append(f"<details><summary>{esc(suite)}</summary>{body}</details>")
    return "".join(parts)


def breakdown_table(rows: list[dict[str, Any]], key: str) -> str:
    names: list[str] = []
    for e in rows:
        names += [n for n in as_dict(e.get(key)) if n not in names]
    if not names:
        return ""
    body = []
    for name in names:
        cells = [cell(esc(name), name, "model")]
        for e in rows:
            value = as_dict(e.get(key)).get(name)
            ci = as_dict(as_dict(e.get("ci")).get(key)).get(name)
            cells.append(num_cell(value, ci=ci, style=heat(value)))
        body.append("<tr>" + "".join(cells) + "</tr>")
    headers = [(key[:-1], "text")] + [(str(e.get("model", "?")), "num") for e in rows]
    return f"<h4>{esc(key)} (%)</h4>" + table(headers, body)


def heat(value: Any) -> str:
    """A light background from red (0) through neutral to green (1), so weak subsets stand out at a glance."""
    v = num(value)
    if v is None:
        return ""
    v = min(max(v, 0.0), 1.0)
    return f"background: hsl({round(120 * v)}, 55%, {96 - round(abs(v - 0.5) * 16)}%)"


def paired_table(paired: list[dict[str, Any]], correction: str) -> str:
    if not paired:
        return ""
    body = []
    for p in paired:
        sig = p.get("significant") is True
        body.append(
            "<tr>" + cell(esc(p.get("model_a", "?")), str(p.get("model_a", "")), "model")
            + cell(esc(p.get("model_b", "?")), str(p.get("model_b", "")), "model")
            + num_cell(p.get("diff"), ci=p.get("ci")) + num_cell(p.get("p"), dec) + num_cell(p.get("p_adjusted"), dec)
            + cell("yes" if sig else "no", int(sig), "sig" if sig else "") + "</tr>"
        )
    headers = [("model A", "text"), ("model B", "text"), ("A − B (points, CI)", "num"), ("p", "num"),
               ("p adjusted", "num"), ("significant", "num")]
    title = "paired differences" + (f" ({correction} correction)" if correction else "")
    return f"<h4>{esc(title)}</h4>" + table(headers, body)


def verdicts_read(judge: dict[str, Any]) -> str:
    """"412/460 (logprobs)": verdicts read of the rows that reached the parser, and how they were read."""
    return f"{judge.get('verdicts_read', '?')}/{judge.get('verdict_rows', '?')} ({judge.get('verdict_mode', 'text')})"


def judge_section(inputs: ReportInputs) -> str:
    judged = [e for e in as_list(inputs.leaderboard) if isinstance(e, dict) and isinstance(e.get("judge"), dict)]
    if not judged:
        return note("No generative judges in this run: position-bias table left out.")
    body = []
    for e in judged:
        j = e["judge"]
        rates = [num(r) for r in as_list(j.get("position_win_rates"))]
        chance = f" (chance {100 / len(rates):.0f})" if rates else ""
        by_position = ", ".join(f"{chr(65 + i)} {pct(r)}" for i, r in enumerate(rates)) or "—"
        body.append(
            "<tr>" + cell(esc(e.get("model", "?")), str(e.get("model", "")), "model")
            + cell(esc(e.get("suite", "?")), str(e.get("suite", "")))
            + num_cell(j.get("official", e.get("score"))) + num_cell(j.get("both_orders_accuracy"))
            + num_cell(j.get("position_consistency"))
            + num_cell(j.get("first_position_rate"), lambda v, chance=chance: pct(v) + chance)
            + cell(esc(by_position), None, "num") + num_cell(j.get("parse_failure_rate"))
            + cell(esc(verdicts_read(j)), j.get("verdicts_read"), "num")
            + num_cell(j.get("error_rate")) + num_cell(j.get("n_comparisons"), count)
            + num_cell(j.get("n_orders"), count) + "</tr>"
        )
    headers = [("model", "text"), ("suite", "text"), ("official", "num"), ("both orders", "num"),
               ("consistency", "num"), ("first position", "num"), ("wins by position", "text"),
               ("parse failures", "num"), ("verdicts read", "num"), ("errors", "num"), ("comparisons", "num"), ("orders", "num")]
    return (
        '<p class="lead">Rates in %. <i>Both orders</i>: correct in every order the pair was shown in; '
        "<i>consistency</i>: the same winner in every order; <i>first position</i>: share of verdicts for whatever "
        "was shown first, which an unbiased judge keeps at chance.</p>" + table(headers, body)
    )


def calibration_section(inputs: ReportInputs) -> str:
    """Judges with probability verdicts (leaderboard.json `judge.calibration`): Brier, ECE, fragile rate, and a
    reliability diagram each. Empty (the section is left out) when no judge has them."""
    rows = [(e, e["judge"]["calibration"]) for e in as_list(inputs.leaderboard)
            if isinstance(e, dict) and isinstance(e.get("judge"), dict)
            and isinstance(e["judge"].get("calibration"), dict)]
    if not rows:
        return ""
    body, plots = [], []
    for e, cal in rows:
        model, suite = str(e.get("model", "?")), str(e.get("suite", "?"))
        body.append(
            "<tr>" + cell(esc(model), model, "model") + cell(esc(suite), suite)
            + num_cell(cal.get("brier"), dec) + num_cell(cal.get("ece"), dec) + num_cell(cal.get("fragile_rate"))
            + num_cell(cal.get("prob_accuracy")) + num_cell(cal.get("mean_margin"), dec)
            + num_cell(cal.get("n_prob_items"), count) + num_cell(cal.get("n_prob_judgments"), count) + "</tr>"
        )
        plots.append(f"<h3>{esc(model)} on {esc(suite)}</h3>"
                     + image(inputs, calibration_plot_file(model, suite), f"reliability diagram, {model} on {suite}"))
    headers = [("judge", "text"), ("suite", "text"), ("Brier", "num"), ("ECE", "num"), ("fragile %", "num"),
               ("accuracy of p %", "num"), ("mean margin", "num"), ("n items", "num"), ("judgments", "num")]
    return (
        '<p class="lead">For judges with probability verdicts: <i>p</i> is the judge\'s probability, averaged over '
        "the orders it was shown, that the candidate shown first in the base order wins, <i>y</i> whether that "
        "candidate is correct. <i>Brier</i> = mean (p − y)², lower is better; <i>ECE</i>: expected calibration error "
        f"over {CALIBRATION_BINS} equal-width bins of p; <i>fragile</i>: share of judgments whose two most probable "
        f"candidates are less than {FRAGILE_MARGIN:g} apart; <i>accuracy of p</i>: share of items whose "
        "order-averaged probability is highest on a correct candidate. Judges without probability verdicts are not "
        "listed.</p>" + table(headers, body) + "".join(plots)
    )


def length_bias_section(inputs: ReportInputs) -> str:
    rows = [e for e in as_list(inputs.leaderboard) if isinstance(e, dict) and isinstance(e.get("length_bias"), dict)]
    if not rows:
        return note("No length-bias split in leaderboard.json (no pairwise suites, or an older run): left out.")
    body = []
    for e in rows:
        lb = e["length_bias"]
        longer, shorter = num(lb.get("longer_correct")), num(lb.get("shorter_correct"))
        gap = None if longer is None or shorter is None else longer - shorter
        body.append(
            "<tr>" + cell(esc(e.get("model", "?")), str(e.get("model", "")), "model")
            + cell(esc(e.get("suite", "?")), str(e.get("suite", "")))
            + num_cell(longer) + num_cell(lb.get("n_longer"), count)
            + num_cell(shorter) + num_cell(lb.get("n_shorter"), count)
            + num_cell(gap, lambda v: "—" if num(v) is None else f"{100 * v:+.1f}") + "</tr>"
        )
    headers = [("model", "text"), ("suite", "text"), ("longer is correct", "num"), ("n", "num"),
               ("shorter is correct", "num"), ("n", "num"), ("gap (points)", "num")]
    return (
        '<p class="lead">Accuracy in % on the pairs where the correct response is the longer one, and where it is '
        "the shorter one. A large positive gap means the model rewards length rather than quality.</p>"
        + table(headers, body)
    )


def bon_section(inputs: ReportInputs) -> str:
    if inputs.bon is None:
        return note("No bon.json in this run: best-of-N section left out.")
    curves = [c for c in inputs.bon if isinstance(c, dict)]
    if not curves:
        return note("bon.json has no curves (no suite with more than two candidates per item).")
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in curves:
        groups.setdefault(str(c.get("suite", "?")), []).append(c)
    parts = [(
        '<p class="lead">Expected quality of the candidate a model picks among k drawn at random (best-of-k), '
        "beside the oracle (always the best of the k) and random choice. The table gives k = N.</p>"
    )]
    for suite, rows in groups.items():
        body = []
        for c in rows:
            ks, expected, oracle = as_list(c.get("k")), as_list(c.get("expected")), as_list(c.get("oracle"))
            body.append(
                "<tr>" + cell(esc(c.get("model", "?")), str(c.get("model", "")), "model")
                + num_cell(ks[-1] if ks else None, count)
                + num_cell(expected[0] if expected else None, dec)
                + num_cell(expected[-1] if expected else None, dec)
                + num_cell(oracle[-1] if oracle else None, dec) + num_cell(c.get("random"), dec)
                + num_cell(c.get("n_items"), count) + "</tr>"
            )
        headers = [("model", "text"), ("N", "num"), ("best-of-1", "num"), ("best-of-N", "num"),
                   ("oracle at N", "num"), ("random", "num"), ("items", "num")]
        parts.append(f"<h3>{esc(suite)}</h3>" + image(inputs, f"plots/bon-{suite}.png", f"best-of-N curves, {suite}"))
        parts.append(table(headers, body))
    return "".join(parts)


def correlation_section(inputs: ReportInputs) -> str:
    if inputs.stats is None:
        return note("No stats.json in this run: correlations left out.")
    records = [c for c in as_list(inputs.stats.get("correlations")) if isinstance(c, dict)]
    if not records:
        return note("stats.json has no correlations (they need a benchmark and a best-of-N pool suite).")
    parts = []
    for c in records:
        bench, pool = str(c.get("benchmark", "?")), str(c.get("pool", "?"))
        models, acc, gain = as_list(c.get("models")), as_list(c.get("accuracy")), as_list(c.get("gain"))
        summary = []
        for label, key in (("Pearson r", "pearson"), ("Spearman ρ", "spearman")):
            r = as_dict(c.get(key))
            ci = interval(r.get("ci"), lambda v: dec(v, 2))
            ci_text = f' <span class="ci">{esc(ci)}</span>' if ci else ""
            summary.append(f"<b>{label}</b> = {esc(dec(r.get('r'), 2))}{ci_text}")
        parts.append(f"<h3>{esc(bench)} accuracy vs {esc(pool)} best-of-N gain</h3>")
        parts.append(f'<p class="stat">{" · ".join(summary)} · {len(models)} models</p>')
        plot = c.get("plot")
        if isinstance(plot, str):
            parts.append(image(inputs, plot, f"{bench} accuracy vs {pool} gain"))
        body = [
            "<tr>" + cell(esc(m), str(m), "model") + num_cell(a) + num_cell(g, dec) + "</tr>"
            for m, a, g in zip(models, acc + [None] * len(models), gain + [None] * len(models))
        ]
        parts.append(table([("model", "text"), (f"{bench} accuracy", "num"), (f"{pool} gain", "num")], body))
    return "".join(parts)


def run_section(inputs: ReportInputs) -> str:
    parts = []
    run = inputs.run
    if run is None:
        parts.append(note("No run.json in this run: versions, hardware and timings left out."))
    else:
        last = run.last_run
        facts = {
            "rmorch": run.rmorch_version, "python": run.python, "platform": run.platform,
            "seed": run.seed, "started": run.started,
            "suites": ", ".join(str(s) for s in run.suites) or None,
            "sweep duration": duration(last.seconds) if last and num(last.seconds) is not None else None,
            "scheduling makespan": (duration(last.makespan_seconds)
                                    if last and num(last.makespan_seconds) is not None else None),
            "GPU idle": (f"{100 * num(last.gpu_idle_fraction):.1f} % of {num(last.gpus) or 0:g} GPUs"
                         if last and num(last.gpu_idle_fraction) is not None else None),
        }
        for model, stop in (last.stopped_models if last else {}).items():  # max_error_rate, per model
            if isinstance(stop, dict):
                facts[f"stopped: {model}"] = (f"{stop.get('error_rows')} of its {stop.get('rows')} result rows were "
                                              f"errors, above max_error_rate {stop.get('max_error_rate')}; its "
                                              f"remaining units were not run. Commonest error: {stop.get('top_error')}")
        boot = as_dict(as_dict(inputs.stats).get("bootstrap"))
        if boot:
            facts["bootstrap"] = ", ".join(f"{k} {v}" for k, v in boot.items())
        parts.append(key_values(facts))
        if last is None:
            parts.append(note("run.json has no last_run (an older rmorch): sweep duration and timings left out."))
        parts.append("<h3>models</h3>" + models_table(run.models, last or LastRun()))
        if run.hardware is not None:
            parts.append("<h3>hardware</h3>" + key_values(run.hardware))
        else:
            parts.append(note("run.json records no hardware (an older rmorch)."))
        if run.versions is not None:
            versions = {k: "not installed" if v is None else v for k, v in run.versions.items()}
            parts.append("<h3>versions</h3>" + key_values(versions))
    if inputs.spec_text is None:
        parts.append(note("No spec.yaml in this run."))
    else:
        parts.append(f"<details><summary>spec.yaml</summary><pre>{esc(inputs.spec_text)}</pre></details>")
    return "".join(parts)


def duration(seconds: Any) -> str:
    s = num(seconds)
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    h, rest = divmod(round(s), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


def key_values(facts: dict[str, Any]) -> str:
    rows = []
    for k, v in facts.items():
        if v is None:
            continue
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        rows.append(f"<dt>{esc(k)}</dt><dd>{esc(text)}</dd>")
    return f'<dl class="kv">{"".join(rows)}</dl>'


# ModelRecord.batch_invariant as the models table shows it
INVARIANCE = {True: "yes", False: "no (outputs may move with batching)", None: "—"}


def models_table(models: dict[str, ModelRecord], last: LastRun) -> str:
    model_s, load_s = last.model_seconds, last.load_seconds
    names = list(models) + [m for m in model_s if m not in models]
    body = []
    for name in names:
        info = models.get(name) or ModelRecord()
        res = as_dict(info.resources)
        loads = [num(x) for x in (load_s.get(name) if isinstance(load_s.get(name), list) else [load_s.get(name)])]
        load_text = ", ".join(duration(x) for x in loads if x is not None) or "—"
        body.append(
            "<tr>" + cell(esc(name), name, "model") + cell(esc(info.kind or "—"), info.kind or "")
            + cell(f"<code title=\"{esc(json.dumps(info.settings or None, default=str))}\">"
                   f"{esc(info.settings_hash or '—')}</code>", info.settings_hash or "")
            + cell(f"<code title=\"{esc(json.dumps(info.provenance or None, default=str))}\">"
                   f"{esc(info.identity or '—')}</code>", info.identity or "")
            + num_cell(res.get("replicas"), count) + num_cell(res.get("num_cpus"), lambda v: dec(v, 1))
            + num_cell(res.get("num_gpus"), lambda v: dec(v, 1))
            + cell(esc(load_text), max([x for x in loads if x is not None], default=""), "num")
            + num_cell(model_s.get(name), duration) + cell(esc(INVARIANCE[info.batch_invariant]),
                                                           INVARIANCE[info.batch_invariant]) + "</tr>"
        )
    headers = [("model", "text"), ("kind", "text"), ("settings hash", "text"), ("identity", "text"),
               ("replicas", "num"), ("CPUs", "num"),
               ("GPUs", "num"), ("load", "num"), ("model time", "num"), ("batch-invariant", "text")]
    return table(headers, body)


# ---- the page -------------------------------------------------------------------------------------------------

SECTIONS: list[tuple[str, str, Callable[[ReportInputs], str]]] = [
    ("leaderboard", "Leaderboard", leaderboard_section),
    ("breakdown", "Sections and subsets", breakdown_section),
    ("judges", "Judge position bias", judge_section),
    ("calibration", "Calibration of probability verdicts", calibration_section),
    ("length-bias", "Length bias", length_bias_section),
    ("best-of-n", "Best-of-N", bon_section),
    ("correlations", "Correlations", correlation_section),
    ("run", "Run", run_section),
]


def guarded(render: Callable[[ReportInputs], str], inputs: ReportInputs) -> str:
    """One section; data in a shape nobody foresaw costs that section (with a note), not the whole report."""
    try:
        return render(inputs)
    except Exception as exc:
        logger.warning("report.html: section %s failed", render.__name__, exc_info=True)
        return note(f"This section could not be drawn from the data ({type(exc).__name__}: {exc}).")


def render_html(inputs: ReportInputs) -> str:
    """The whole page, from `inputs` alone; a section that draws nothing (calibration, without probability
    verdicts) is left out, from the navigation too."""
    drawn = [(sid, title, guarded(render, inputs)) for sid, title, render in SECTIONS]
    drawn = [(sid, title, html_) for sid, title, html_ in drawn if html_]
    nav = " · ".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in drawn)
    body = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2>{html_}</section>' for sid, title, html_ in drawn)
    problems = "".join(note(f"Could not read {p}") for p in inputs.problems)
    run = inputs.run or RunRecord()
    subtitle = " · ".join(
        esc(x) for x in (run.started, f"seed {run.seed}" if run.seed is not None else None,
                         f"rmorch {run.rmorch_version}" if run.rmorch_version else None) if x
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rmorch report: {esc(inputs.title)}</title>
<style>{CSS}</style></head>
<body><header><h1>rmorch report: {esc(inputs.title)}</h1><p class="sub">{subtitle}</p><nav>{nav}</nav></header>
<main>{problems}{body}</main>
<script>{JS}</script></body></html>
"""


CSS = """
:root { --fg: #1d232b; --muted: #687382; --line: #e3e7ec; --accent: #2f5fb3; --base: #fff4d6; --head: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
header { padding: 18px 32px 10px; border-bottom: 1px solid var(--line); background: #fbfcfd; }
h1 { margin: 0; font-size: 22px; } h2 { margin: 32px 0 8px; font-size: 19px; border-bottom: 2px solid var(--line); }
h3 { margin: 22px 0 6px; font-size: 16px; } h4 { margin: 16px 0 4px; font-size: 14px; color: var(--muted); }
.sub { margin: 2px 0 8px; color: var(--muted); } nav a { color: var(--accent); text-decoration: none; }
main { padding: 0 32px 48px; max-width: 1400px; }
.lead { color: var(--muted); max-width: 900px; } .note { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: var(--head); }
.scroll { overflow-x: auto; max-width: 100%; }
th.num, td.num { text-align: right; }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid var(--accent); }
th[aria-sort="ascending"] button::after { content: " ▲"; color: var(--accent); }
th[aria-sort="descending"] button::after { content: " ▼"; color: var(--accent); }
tbody tr:hover { background: #f3f6fb; }
td.model { font-weight: 500; max-width: 420px; overflow: hidden; text-overflow: ellipsis; }
td.score { font-weight: 600; } .ci { color: var(--muted); font-weight: 400; font-size: 12px; }
tr.baseline { background: var(--base); } tr.baseline:hover { background: #ffecb8; }
td.warn { color: #b3261e; font-weight: 600; } td.sig { color: #1e7b34; font-weight: 600; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; font-weight: 600; }
.badge.best { background: #1e7b34; color: #fff; } .badge.tied { background: #d7eedd; color: #1e5b2c; }
.badge.base { background: #f0c24b; color: #4a3700; }
details { margin: 8px 0; border: 1px solid var(--line); border-radius: 6px; padding: 4px 12px; }
summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
figure { margin: 8px 0; } img { max-width: min(100%, 760px); height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
pre { background: var(--head); padding: 10px; overflow: auto; }
"""

# Sort on header click: numbers compare by data-v (empty = no value, always last), text by data-v or the text.
# First click sorts numbers high-to-low (best first) and text A-Z; the next click reverses.
JS = """
(function () {
  function key(td, numeric) {
    var v = td.hasAttribute('data-v') ? td.getAttribute('data-v') : td.textContent.trim();
    if (!numeric) return v.toLowerCase();
    return v === '' || isNaN(parseFloat(v)) ? null : parseFloat(v);
  }
  function sortBy(table, th, col) {
    var numeric = th.getAttribute('data-type') === 'num';
    var current = th.getAttribute('aria-sort');
    var dir = current ? (current === 'ascending' ? -1 : 1) : (numeric ? -1 : 1);
    table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
      if (x === null || y === null) return (x === null) - (y === null);
      return x < y ? -dir : x > y ? dir : 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.querySelector('button').addEventListener('click', function () { sortBy(table, th, col); });
    });
  });
})();
"""
