"""OUT/report.html: built from fixture files in the exact formats a sweep writes, then opened in a real headless
Chromium (Debian's `chromium`), driven over the DevTools protocol on a pipe: the page must show the leaderboard with
CIs, tie markers and the length baseline, the judge and length-bias tables, the embedded plots (decoded, non-zero
size), render a hostile model name as text, sort on a real mouse click, and load nothing from the network.
Missing or old inputs must cost their sections only (a note), never the report."""

from __future__ import annotations

import json
from pathlib import Path

from rmorch.orchestrator.report.html import write_html_report
from tests.chromium import Chromium
from tests.unit import test_html_report as fast
from tests.unit.test_html_report import HOSTILE, HOSTILE_SUBSET

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_html_report.py
full_out = fast.full_out  # a fixture shared with the fast tier


# ---- the page in a real browser ---------------------------------------------------------------------------------


def _rows(chromium: Chromium, table: str) -> list[str]:
    return chromium.eval(f"Array.from(document.querySelectorAll({json.dumps(table + ' tbody tr td.model')}),"
                         " td => td.getAttribute('data-v'))")


def test_report_in_headless_chromium(full_out: Path, browser: Chromium, tmp_path: Path) -> None:
    path = write_html_report(str(full_out))
    browser.open(Path(path).as_uri())
    lb = "#lb-rewardbench + .scroll table"

    # leaderboard of the first suite: every model, best first; score with CI; tie and best markers; baseline
    assert _rows(browser, lb) == ["rm-good", HOSTILE, "judge-small", "length", "broken-rm"]
    score_cells = browser.eval(f"Array.from(document.querySelectorAll('{lb} td.score'), td => td.textContent)")
    assert score_cells[0] == "71.3 [69.2, 73.4]" and score_cells[-1] == "—"
    assert browser.eval(f"document.querySelector('{lb} tbody tr:nth-child(2) .badge.tied') !== null")
    assert browser.eval(f"document.querySelector('{lb} tbody tr:nth-child(1) .badge.best') !== null")
    assert browser.eval(f"document.querySelector('{lb} tr.baseline td.model').getAttribute('data-v')") == "length"
    assert browser.eval(f"getComputedStyle(document.querySelector('{lb} tr.baseline')).backgroundColor") \
        != "rgba(0, 0, 0, 0)"
    # the hostile name is text, and nothing injected ran or was parsed as markup
    assert HOSTILE in browser.eval("document.body.innerText")
    assert browser.eval("document.scripts.length") == 1
    assert browser.eval("document.querySelectorAll('.injected').length") == 0
    assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]

    # judge, length bias, best-of-N k = N, correlation and run metadata
    judge_text = browser.eval("document.querySelector('#judges table').innerText")
    assert "judge-small" in judge_text and "73.0 (chance 50)" in judge_text and "A 73.0, B 27.0" in judge_text
    length_text = browser.eval("document.querySelector('#length-bias table').innerText")
    assert "80.0" in length_text and "+40.0" in length_text
    bon_text = browser.eval("document.querySelector('#best-of-n table').innerText")
    assert "0.350" in bon_text and "0.700" in bon_text
    corr_text = browser.eval("document.querySelector('#correlations').innerText")
    assert "Pearson r = 0.93 [0.41, 0.99]" in corr_text and "Spearman ρ = 1.00" in corr_text
    run_text = browser.eval("document.querySelector('#run').innerText")
    assert "1 h 02 min" in run_text and "30 min 00 s" in run_text and "resamples 1000" in run_text
    assert "seed" in run_text and "2.60.0" in run_text and "cpus" in run_text

    # the embedded plots decoded, and nothing but data: URIs and in-page anchors is referenced
    sizes = browser.eval("Array.from(document.images, i => [i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 2 and all(w > 0 and h > 0 for w, h in sizes)
    external = browser.eval("Array.from(document.querySelectorAll('[src],[href]'), e => e.getAttribute('src') ||"
                            " e.getAttribute('href')).filter(u => !u.startsWith('data:') && !u.startsWith('#'))")
    assert external == []

    # sorting by a real click: score high-to-low (no score last), then low-to-high; model names A-Z
    browser.click(f"{lb} th:nth-child(3) button")
    assert _rows(browser, lb) == ["rm-good", HOSTILE, "judge-small", "length", "broken-rm"]
    assert browser.eval(f"document.querySelector('{lb} th:nth-child(3)').getAttribute('aria-sort')") == "descending"
    browser.click(f"{lb} th:nth-child(3) button")
    assert _rows(browser, lb) == ["length", "judge-small", HOSTILE, "rm-good", "broken-rm"]
    browser.click(f"{lb} th:nth-child(2) button")
    assert _rows(browser, lb) == ["<script>alert(1)</script>", "broken-rm", "judge-small", "length", "rm-good"]

    # no script errors, no CSP violations (the inline script and the data: images are allowed, nothing else)
    errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert errors == []

    browser.eval("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    subsets = browser.eval("document.querySelector('#breakdown details').innerText")
    assert HOSTILE_SUBSET in subsets and "71.3 [69.2, 73.4]" in subsets and "holm correction" in subsets
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
