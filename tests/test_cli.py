"""The `rmorch` command line, run as a subprocess: user mistakes exit 2 with one clear line and no traceback; a small
real sweep of the baselines writes the leaderboard files, and `rmorch report` reproduces them."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import REPO, SHARED_DATA

RB_DIR = SHARED_DATA / "rewardbench"
RB_FILE = RB_DIR / "filtered.jsonl"
SECTIONS = {"Chat", "Chat Hard", "Safety", "Reasoning"}


def _rmorch_exe() -> str:
    beside = Path(sys.executable).parent / "rmorch"
    return str(beside if beside.exists() else REPO / ".venv" / "bin" / "rmorch")


RMORCH = _rmorch_exe()


def rmorch(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", COLUMNS="200", NO_COLOR="1")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([RMORCH, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, check=False)


def assert_user_error(p: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 2, every needle on stderr, no traceback anywhere."""
    where = f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    assert "Traceback" not in p.stderr + p.stdout, where
    assert p.returncode == 2, where
    for n in needles:
        assert n in p.stderr, f"{n!r} not on stderr\n{where}"


def write_spec(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def real_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    with open(RB_FILE, encoding="utf-8") as f:
        for line, _ in zip(f, range(n)):
            rows.append(json.loads(line))
    return rows


def assert_no_results(out: Path) -> None:
    for name in ("results", "manifest", "leaderboard.json", "run.json"):
        assert not (out / name).exists(), f"{out / name} was written"


# ---- listing ------------------------------------------------------------------------------------------------


def test_ls_lists_suites_and_kinds() -> None:
    p = rmorch("ls")
    assert p.returncode == 0, p.stderr
    for name in ("rewardbench", "rewardbench2", "classifier", "length", "random"):
        assert name in p.stdout, p.stdout


# ---- user mistakes ------------------------------------------------------------------------------------------


def test_unknown_suite_option(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = rmorch("sweep", "--suite", "rewardbnch", "--model", "length", "--data-dir", SHARED_DATA, "--out", out,
               "--quiet")
    assert_user_error(p, "unknown suite", "did you mean 'rewardbench'")
    assert not out.exists()


def test_unknown_model_name_option(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = rmorch("sweep", "--suite", "rewardbench", "--model", "lenght", "--data-dir", SHARED_DATA, "--out", out,
               "--quiet")
    assert_user_error(p, "lenght")
    assert not out.exists()


def test_spec_file_with_a_missing_column(tmp_path: Path) -> None:
    rows = real_rows(5)
    del rows[3]["chosen"]
    data = tmp_path / "data" / "bad.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    spec = write_spec(tmp_path / "spec.yaml", {"suites": [{"name": "rewardbench", "data": str(data.parent)}],
                                                 "models": ["length"]})
    p = rmorch("sweep", spec, "--out", out, "--quiet", "--num-cpus", "1")
    assert_user_error(p, str(data), "row 4", "field 'chosen'")
    assert_no_results(out)


def test_missing_spec_file(tmp_path: Path) -> None:
    spec = tmp_path / "nope.yaml"
    p = rmorch("sweep", spec, "--out", tmp_path / "out", "--quiet")
    assert_user_error(p, str(spec))


def test_invalid_yaml_spec(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("suites: [rewardbench\nmodels: {\n")
    p = rmorch("sweep", spec, "--out", tmp_path / "out", "--quiet")
    assert_user_error(p, str(spec), "YAML")


def test_spec_file_and_options_together(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", {"suites": ["rewardbench"], "models": ["length"]})
    p = rmorch("sweep", spec, "--suite", "rewardbench", "--out", tmp_path / "out", "--quiet")
    assert_user_error(p, "not both")


def test_no_spec_and_no_options(tmp_path: Path) -> None:
    assert_user_error(rmorch("sweep", "--out", tmp_path / "out", "--quiet"))


def test_report_of_a_nonexistent_directory(tmp_path: Path) -> None:
    missing = tmp_path / "NONEXISTENT"
    assert_user_error(rmorch("report", missing), str(missing))


def test_report_of_a_directory_that_is_not_a_sweep(tmp_path: Path) -> None:
    assert_user_error(rmorch("report", tmp_path), str(tmp_path), "run.json")


def test_classifier_path_that_does_not_exist(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = rmorch("sweep", "--suite", "rewardbench", "--model", "my-rm=./does-not-exist", "--data-dir", SHARED_DATA,
               "--limit-per-subset", "1", "--out", out, "--quiet", cwd=tmp_path)
    assert_user_error(p, "my-rm", "./does-not-exist", "does not exist")
    assert_no_results(out)


@pytest.mark.parametrize("entry,needles", [
    ({"sed": 1}, ["'sed'", "did you mean 'seed'"]),
    ({"models": [{"name": "rm", "kind": "classifier", "path": "x", "dtype": "fp8"}]}, ["models[0].dtype", "'fp8'"]),
    ({"models": [{"name": "rm", "kind": "classifier", "path": "x", "max_lenght": 9}]}, ["did you mean 'max_length'"]),
    ({"models": [{"name": "rm", "kind": 5}]}, ["models[0].kind"]),
    ({"seed": -1}, ["seed"]),
])
def test_spec_mistakes_exit_2_without_traceback(tmp_path: Path, entry: dict, needles: list[str]) -> None:
    doc: dict[str, Any] = {"suites": [{"name": "rewardbench", "data": str(RB_DIR), "limit_per_subset": 1}],
                           "models": ["length"], **entry}
    spec = write_spec(tmp_path / "spec.yaml", doc)
    out = tmp_path / "out"
    p = rmorch("sweep", spec, "--out", out, "--quiet", "--num-cpus", "1")
    assert_user_error(p, str(spec), *needles)
    assert_no_results(out)


def test_error_messages_are_printed_verbatim(tmp_path: Path) -> None:
    """Error text is not Rich markup: brackets in a path are printed as they are."""
    data = tmp_path / "runs[v1]" / "missing.jsonl"
    spec = write_spec(tmp_path / "spec.yaml", {"suites": [{"name": "rewardbench", "data": str(data)}],
                                                 "models": ["length"]})
    p = rmorch("sweep", spec, "--out", tmp_path / "out", "--quiet")
    assert_user_error(p, str(data), "no such file")


def test_error_messages_with_closing_tags_do_not_crash(tmp_path: Path) -> None:
    """A message holding something like '[/b]' (a path, a value) must not make Rich raise MarkupError."""
    data = tmp_path / "x[" / "b]" / "missing.jsonl"  # the path string contains "[/b]"
    assert "[/b]" in str(data)
    spec = write_spec(tmp_path / "spec.yaml", {"suites": [{"name": "rewardbench", "data": str(data)}],
                                                 "models": ["length"]})
    p = rmorch("sweep", spec, "--out", tmp_path / "out", "--quiet")
    assert_user_error(p, str(data))


# ---- a real sweep of the baselines --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("cli-sweep")
    spec = write_spec(tmp / "spec.yaml", {
        "suites": [{"name": "rewardbench", "data": str(RB_DIR), "limit_per_subset": 3}],
        "models": ["length", "random"],
    })
    out = tmp / "out"
    p = rmorch("sweep", spec, "--out", out, "--quiet", "--num-cpus", "2")
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return {"spec": spec, "out": out, "proc": p, "json": (out / "leaderboard.json").read_bytes()}


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The leaderboard rows Rich printed: model -> cells."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 2 and cells[0] in ("length", "random"):
            rows[cells[0]] = cells
    return rows


def test_sweep_writes_the_leaderboard(swept: dict[str, Any]) -> None:
    out = swept["out"]
    assert "Traceback" not in swept["proc"].stderr
    entries = json.loads(swept["json"])
    assert isinstance(entries, list)
    assert sorted(e["model"] for e in entries) == ["length", "random"]
    for e in entries:
        assert {"model", "suite", "score", "sections", "subsets", "n_items", "n_errors"} <= set(e)
        assert e["suite"] == "rewardbench"
        assert 0.0 <= e["score"] <= 1.0
        assert set(e["sections"]) == SECTIONS
        assert all(0.0 <= v <= 1.0 for v in e["sections"].values())
        assert len(e["subsets"]) == 23
        assert all(0.0 <= v <= 1.0 for v in e["subsets"].values())
        assert e["n_items"] == 69
        assert e["n_errors"] == 0
        assert abs(e["score"] - sum(e["sections"].values()) / 4) < 1e-9
    assert (out / "leaderboard.csv").is_file()
    assert (out / "leaderboard.md").is_file()


def test_sweep_prints_the_leaderboard(swept: dict[str, Any]) -> None:
    rows = _table_rows(swept["proc"].stdout)
    assert set(rows) == {"length", "random"}, swept["proc"].stdout
    for e in json.loads(swept["json"]):
        assert rows[e["model"]][1] == f"{100 * e['score']:.1f}"


def test_length_baseline_scores_are_right(swept: dict[str, Any]) -> None:
    """Recompute the length baseline from the item table the sweep recorded: strict >, weighted sections."""
    from rmorch.suites.rewardbench import SECTIONS as SECTION_SUBSETS
    from rmorch.suites.rewardbench import SUBSET_WEIGHTS

    items = pq.read_table(swept["out"] / "items" / "rewardbench.parquet").to_pylist()
    assert len(items) == 69
    per_subset: dict[str, list[float]] = {}
    for it in items:
        chosen, rejected = it["candidates"]
        per_subset.setdefault(it["subset"], []).append(1.0 if len(chosen) > len(rejected) else 0.0)
    assert {k: len(v) for k, v in per_subset.items()} == {s: 3 for s in SUBSET_WEIGHTS}
    acc = {k: sum(v) / len(v) for k, v in per_subset.items()}
    sections = {
        name: sum(acc[s] * SUBSET_WEIGHTS[s] for s in subs) / sum(SUBSET_WEIGHTS[s] for s in subs)
        for name, subs in SECTION_SUBSETS.items()
    }
    length = next(e for e in json.loads(swept["json"]) if e["model"] == "length")
    assert length["subsets"] == pytest.approx(acc)
    assert length["sections"] == pytest.approx(sections)
    assert length["score"] == pytest.approx(sum(sections.values()) / 4)


def test_leaderboard_csv_and_md(swept: dict[str, Any]) -> None:
    entries = {e["model"]: e for e in json.loads(swept["json"])}
    rows = list(csv.DictReader(io.StringIO((swept["out"] / "leaderboard.csv").read_text())))
    assert sorted(r["model"] for r in rows) == ["length", "random"]
    for r in rows:
        assert float(r["score"]) == pytest.approx(entries[r["model"]]["score"], abs=1e-6)
        assert int(r["n_items"]) == 69
    md = (swept["out"] / "leaderboard.md").read_text()
    assert "rewardbench" in md and "| length |" in md and "| random |" in md


def test_report_reproduces_the_leaderboard(swept: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(swept["out"], copy)
    for name in ("leaderboard.json", "leaderboard.csv", "leaderboard.md"):
        (copy / name).unlink()
    p = rmorch("report", copy)
    assert p.returncode == 0, p.stderr
    assert (copy / "leaderboard.json").read_bytes() == swept["json"]
    assert (copy / "leaderboard.csv").read_bytes() == (swept["out"] / "leaderboard.csv").read_bytes()
    assert (copy / "leaderboard.md").read_bytes() == (swept["out"] / "leaderboard.md").read_bytes()
    assert _table_rows(p.stdout) == _table_rows(swept["proc"].stdout)


def test_rerun_resumes_from_the_store(swept: dict[str, Any], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(swept["out"], copy)
    p = rmorch("sweep", swept["spec"], "--out", copy, "--quiet", "--num-cpus", "2")
    assert p.returncode == 0, p.stderr
    assert "0 computed" in p.stdout, p.stdout
    assert (copy / "leaderboard.json").read_bytes() == swept["json"]
