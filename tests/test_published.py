"""Results travel: export a real sweep in the RewardBench results layout (rmorch.orchestrator.report.export), then replay the
exported per-item scores with the `published` kind (actors/published.py) through the real pipeline, and load
hand-written files in the official layout. Real Ray, real pyarrow, real RewardBench data (a seeded sample) and the
RewardBench 2 fixture."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from rmorch.actors.published import load_published
from rmorch.core.errors import DataError
from rmorch.orchestrator.report.export import export_reward_bench
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.orchestrator.store.results import ResultStore
from rmorch.orchestrator.sweep import run_sweep
from tests.local_http import JsonHandler, serving

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_published.py

RB2_FIXTURE = Path(__file__).parent / "fixtures" / "rewardbench2" / "sample.jsonl"
LIMIT = 3  # items per RewardBench subset: 23 subsets, 69 pairs


def _suites(rewardbench_file: Path) -> list[dict]:
    return [
        {"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": LIMIT},
        {"name": "rewardbench2", "data": str(RB2_FIXTURE)},
    ]


def _board(out: Path) -> dict[tuple[str, str], dict]:
    return {(e["model"], e["suite"]): e for e in json.loads((out / "leaderboard.json").read_text())}


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def exported(local_ray, rewardbench_file, tmp_path_factory) -> tuple[Path, Path]:
    """One live sweep (length, random and their ensemble on both suites), exported with the default dest."""
    out = tmp_path_factory.mktemp("live") / "out"
    spec = spec_from_dict({
        "out": str(out),
        "suites": _suites(rewardbench_file),
        "models": ["length", "random"],
        "ensembles": [{"name": "len-rand", "members": ["length", "random"]}],
    })
    assert run_sweep(spec).ok
    written = export_reward_bench(str(out))
    dest = out / "export" / "reward-bench"
    expected = {f"{repo}/{folder}/rmorch/{m}.json" for repo in ("reward-bench-results", "reward-bench-2-results")
                for folder in ("eval-set", "eval-set-scores") for m in ("length", "random", "len-rand")}
    assert {str(Path(p).relative_to(dest)) for p in written} == expected
    return out, dest


def test_v1_files_match_the_leaderboard(exported, rewardbench_file) -> None:
    out, dest = exported
    board = _board(out)
    data = [json.loads(line) for line in rewardbench_file.read_text().splitlines()]
    by_key = {f"{r['subset']}/{r['id']}": r for r in data}
    for model in ("length", "random", "len-rand"):
        entry = board[(model, "rewardbench")]
        acc = _read(dest / "reward-bench-results" / "eval-set" / "rmorch" / f"{model}.json")
        assert acc == {"model": f"rmorch/{model}", "model_type": "Custom Classifier", "chat_template": None,
                       **entry["subsets"]}
        assert len(entry["subsets"]) == 23

        scores = _read(dest / "reward-bench-results" / "eval-set-scores" / "rmorch" / f"{model}.json")
        assert set(scores) == {"id", "subset", "results", "scores_chosen", "scores_rejected", "model", "model_type",
                               "chat_template"}
        assert len(scores["id"]) == entry["n_items"] == 23 * LIMIT
        assert all(isinstance(i, int) for i in scores["id"])  # the dataset's own ids, as the official files
        hits = defaultdict(list)
        for i, subset in enumerate(scores["subset"]):
            chosen, rejected, result = scores["scores_chosen"][i], scores["scores_rejected"][i], scores["results"][i]
            assert result == (1 if chosen > rejected else 0)
            hits[subset].append(result)
            if model == "length":  # the score is the response length, checked against the data file itself
                row = by_key[f"{subset}/{scores['id'][i]}"]
                assert (chosen, rejected) == (len(row["chosen"]), len(row["rejected"]))
        assert {s: sum(v) / len(v) for s, v in hits.items()} == entry["subsets"]


def test_v2_files_match_the_leaderboard(exported) -> None:
    out, dest = exported
    board = _board(out)
    data = {r["id"]: r for r in map(json.loads, RB2_FIXTURE.read_text().splitlines())}
    for model in ("length", "random"):
        entry = board[(model, "rewardbench2")]
        acc = _read(dest / "reward-bench-2-results" / "eval-set" / "rmorch" / f"{model}.json")
        assert acc == {"model": f"rmorch/{model}", "model_type": "Custom Classifier", "chat_template": None,
                       **entry["subsets"]}
        assert set(entry["subsets"]) == {"Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"}

        scores = _read(dest / "reward-bench-2-results" / "eval-set-scores" / "rmorch" / f"{model}.json")
        assert set(scores) == {"id", "subset", "num_correct", "scores", "results", "model", "model_type",
                               "chat_template"}
        assert scores["id"] == list(data)  # the fixture's order
        credit = defaultdict(list)
        for iid, subset, k, s, result in zip(scores["id"], scores["subset"], scores["num_correct"], scores["scores"],
                                             scores["results"]):
            row = data[iid]
            assert k == len(row["chosen"]) and len(s) == len(row["chosen"]) + len(row["rejected"])
            if model == "length":
                assert s == [float(len(c)) for c in row["chosen"] + row["rejected"]]
            if subset == "Ties":
                assert result is None  # scored over the whole subset
            else:
                top = max(s)
                assert result == pytest.approx((1 / s.count(top)) if s[0] == top else 0)
                credit[subset].append(result)
        for subset, values in credit.items():
            assert sum(values) / len(values) == pytest.approx(entry["subsets"][subset], abs=1e-12)


def test_published_replay_equals_the_live_model(exported, rewardbench_file, tmp_path) -> None:
    """The exported per-item files of `length` (v1 and v2, one directory) replayed as a `published` model give the
    live model's leaderboard numbers exactly."""
    _, dest = exported
    published_dir = tmp_path / "length-published"
    for repo in ("reward-bench-results", "reward-bench-2-results"):
        target = published_dir / repo
        target.mkdir(parents=True)
        shutil.copy(dest / repo / "eval-set-scores" / "rmorch" / "length.json", target / "length.json")
    out = tmp_path / "out"
    spec = spec_from_dict({
        "out": str(out),
        "suites": _suites(rewardbench_file),
        "models": ["length", {"name": "length-published", "kind": "published", "path": str(published_dir)}],
    })
    result = run_sweep(spec)
    assert result.ok
    board = _board(out)
    for suite in ("rewardbench", "rewardbench2"):
        live, replay = board[("length", suite)], board[("length-published", suite)]
        assert replay["n_errors"] == 0 and replay["n_missing"] == 0
        for key in ("score", "sections", "subsets", "n_items", "extra"):
            assert replay.get(key) == live.get(key), (suite, key)
    # The replay needs no accelerator: its replica got no GPU although the test cluster has two logical ones.
    replicas = [r for r in json.loads((out / "run.json").read_text())["last_run"]["replicas"]
                if r.get("model") == "length-published"]
    assert replicas and all(not r.get("gpu_ids") for r in replicas)


# ---- a generative judge: the Generative RM layout ---------------------------------------------------------------


class _JudgeAPI(JsonHandler):
    """A deterministic OpenAI-compatible chat server on 127.0.0.1 (no hosted API is reachable here): from a hash of
    the prompt it answers a verdict ([[A]], [[B]] or none) and a rating ([[1]]..[[10]] or none), so that verdicts,
    unparsed verdicts, ratings and unparsed ratings all occur."""


    def do_GET(self) -> None:
        self.send_json({"object": "list", "data": [{"id": "hash-judge", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        h = int(hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest(), 16)
        verdict = ("[[A]]", "[[B]]", "no idea")[h % 3]
        rating = f"Rating: [[{h // 3 % 10 + 1}]]" if h // 30 % 4 else ""
        text = f"{verdict} {rating}"
        self.send_json({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


@pytest.fixture(scope="module")
def judge_api():
    with serving(_JudgeAPI) as url:
        yield f"{url}/v1"


def test_generative_judge_export(local_ray, rewardbench_file, judge_api, tmp_path) -> None:
    """A four-way judge (two-way on v1 pairs) on both suites: the files carry the per-item credit, no scores on
    v1, ratings on RewardBench 2's Ties, and `model_type` "Generative RM", as run_generative*.py write them."""
    out = tmp_path / "out"
    spec = spec_from_dict({
        "out": str(out),
        "suites": [{"name": "rb-sample", "kind": "rewardbench", "data": str(rewardbench_file.parent),
                    "limit_per_subset": 4, "subsets": ["alpacaeval-easy", "hep-go", "llmbar-natural"]},
                   {"name": "rewardbench2", "data": str(RB2_FIXTURE)}],
        "models": [{"name": "hash-judge", "kind": "judge", "backend": "openai", "base_url": judge_api,
                    "path": "hash-judge", "protocol": "nway", "permutations": "single"}],
    })
    assert run_sweep(spec).ok
    board = _board(out)
    dest = tmp_path / "export"
    export_reward_bench(str(out), str(dest), org="judges")

    v1 = board[("hash-judge", "rb-sample")]  # a rewardbench suite under its own name: folders of its own
    acc = _read(dest / "reward-bench-results-rb-sample" / "eval-set" / "judges" / "hash-judge.json")
    assert acc == {"model": "judges/hash-judge", "model_type": "Generative RM", "chat_template": "server",
                   **v1["subsets"]}
    scores = _read(dest / "reward-bench-results-rb-sample" / "eval-set-scores" / "judges" / "hash-judge.json")
    assert set(scores) == {"id", "subset", "results", "model", "model_type"}
    assert set(scores["results"]) == {0, 1, 0.5}  # wrong, right, unparsed
    by_subset = defaultdict(list)
    for subset, result in zip(scores["subset"], scores["results"]):
        by_subset[subset].append(result)
    assert {s: sum(v) / len(v) for s, v in by_subset.items()} == v1["subsets"]

    v2 = board[("hash-judge", "rewardbench2")]
    scores = _read(dest / "reward-bench-2-results" / "eval-set-scores" / "judges" / "hash-judge.json")
    assert set(scores) == {"id", "subset", "num_correct", "scores", "results", "model", "model_type"}
    credit = defaultdict(list)
    ratings = []
    for subset, s, result in zip(scores["subset"], scores["scores"], scores["results"]):
        if subset == "Ties":
            assert result is None and len(s) >= 3
            ratings.extend(s)
        else:
            assert s is None and result in (0, 1, 0.25)
            credit[subset].append(result)
    assert -1 in ratings and set(ratings) - {-1} <= set(map(float, range(1, 11)))  # unparsed ratings are -1
    for subset, values in credit.items():
        assert sum(values) / len(values) == pytest.approx(v2["subsets"][subset], abs=1e-12)
    assert _read(dest / "reward-bench-2-results" / "eval-set" / "judges" / "hash-judge.json")["Ties"] == \
        v2["subsets"]["Ties"]
    with pytest.raises(DataError, match="generative judge"):
        load_published(str(dest / "reward-bench-results-rb-sample" / "eval-set-scores" / "judges" / "hash-judge.json"))


# ---- hand-written files in the official layout ----------------------------------------------------------------


def _sampled_items(rewardbench_file: Path, subset: str) -> list[dict]:
    """The items a sweep with LIMIT per subset scores in `subset` (the real sampler, through the real loader)."""
    from rmorch.orchestrator.plan.units import load_suite

    spec = spec_from_dict({"suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent),
                                       "limit_per_subset": LIMIT, "subsets": [subset]}], "models": ["length"]})
    return load_suite(spec.suites[0], spec.seed).items.to_pylist()


def test_hand_written_file_loads_and_missing_item_gives_error_rows(local_ray, rewardbench_file, tmp_path) -> None:
    items = _sampled_items(rewardbench_file, "alpacaeval-easy")
    ids = [json.loads(it["meta"])["id"] for it in items]
    assert len(ids) == LIMIT
    # As scripts/run_rm.py saves it (dataset to_dict() + model, model_type, chat_template), with texts, for all
    # but the last sampled item; the first is published the wrong way round.
    doc = {
        "chat_template": "tokenizer",
        "id": ids[:-1],
        "model": "org/hand-rm",
        "model_type": "Seq. Classifier",
        "results": [0, 1],
        "scores_chosen": [-1.5, 2.25],
        "scores_rejected": [0.5, -3.0],
        "subset": ["alpacaeval-easy", "alpacaeval-easy"],
        "text_chosen": ["<|user|>hi<|assistant|>a", "<|user|>hi<|assistant|>b"],
        "text_rejected": ["<|user|>hi<|assistant|>c", "<|user|>hi<|assistant|>d"],
    }
    path = tmp_path / "hand-rm.json"
    path.write_text(json.dumps(doc, indent=4, sort_keys=True))

    table = load_published(str(path))
    assert table.scores == {f"alpacaeval-easy/{ids[0]}": [-1.5, 0.5], f"alpacaeval-easy/{ids[1]}": [2.25, -3.0]}
    assert (table.model, table.model_type, table.chat_template) == ("org/hand-rm", "Seq. Classifier", "tokenizer")

    out = tmp_path / "out"
    spec = spec_from_dict({
        "out": str(out),
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": LIMIT,
                    "subsets": ["alpacaeval-easy"]}],
        "models": [{"name": "hand-rm", "kind": "published", "path": str(path)}],
    })
    assert run_sweep(spec).ok
    entry = _board(out)[("hand-rm", "rewardbench")]
    assert entry["n_items"] == LIMIT and entry["n_errors"] == 1 and entry["n_missing"] == 0
    assert entry["subsets"] == {"alpacaeval-easy": pytest.approx(1 / 3)}  # one right, one wrong, one error
    store = ResultStore(str(out))
    rows = store.read_results(store.manifest()).to_pylist()
    errors = [r for r in rows if r["error"] is not None]
    missing = f"alpacaeval-easy/{ids[-1]}"
    assert {(r["item_id"], r["candidate"]) for r in errors} == {(missing, 0), (missing, 1)}
    assert all(f"no published score for item '{missing}'" in r["error"] and r["score"] is None for r in errors)
    assert {r["backend"] for r in rows} == {"published"} and {r["chat_template"] for r in rows} == {"tokenizer"}
