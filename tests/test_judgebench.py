"""JudgeBench through the real CLI (`rmorch sweep`, a subprocess on a local Ray): the benchmark authors' 7 published
runs (../shared/data/judgebench/outputs, `kind: published`, recognised from their content) and the `length` baseline
on both splits reproduce JudgeBench's own metric, computed here from the raw files by a re-implementation of their
utils/metrics.py; and a new judge (`template: arena_hard` on an OpenAI-compatible server scripted here) is ranked
beside the paper's judges in one report, its number checked against JudgeBench's own prompt rendering (Jinja),
verdict rule and metric applied to the server's replies.

The fast-tier half (loader, metric by hand, the arena-hard rule and prompt): tests/unit/test_judgebench.py."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import pyarrow.parquet as pq
import pytest

from rmorch.actors.judge import ARENA_HARD_CONTINUE
from rmorch.actors.judge_official_prompts import AH_SYSTEM, AH_USER
from tests.conftest import SHARED_DATA
from tests.local_http import JsonHandler, serving
from tests.test_cli import rmorch, write_spec

DATA = SHARED_DATA / "judgebench"
OUTPUTS = DATA / "outputs"
SUITES = {"gpt-4o-2024-05-13": "judgebench", "claude-3-5-sonnet-20240620": "judgebench-claude"}
CATEGORIES = {"livebench-reasoning": "Reasoning", "livebench-math": "Math", "livecodebench": "Coding"}
FLIP = {"A>B": "B>A", "B>A": "A>B"}


# ---- JudgeBench's own rule, from the raw files ---------------------------------------------------------------------


def category(source: str) -> str:
    return "Knowledge" if source.startswith("mmlu-pro-") else CATEGORIES[source]


def official(pairs: list[dict[str, Any]]) -> dict[str, float]:
    """utils/metrics.py compute_final_metrics(reverse_order=True): per pair, both decisions (the second flipped back)
    +1 if equal to the label, -1 if equal to the other label, else 0; correct iff the sum is > 0. Per category
    (include_fn on the source) and over all pairs."""
    hits: dict[str, list[bool]] = {}
    for pair in pairs:
        j1, j2 = pair["judgments"]
        d1 = j1["decision"] if j1 is not None else None
        d2 = j2["decision"] if j2 is not None else None
        d2 = FLIP.get(d2, d2)  # flip_judgment: A>B <-> B>A, anything else unchanged
        counter = 0
        for d in (d1, d2):
            if d == pair["label"]:
                counter += 1
            elif d == FLIP[pair["label"]]:
                counter -= 1
        for key in (category(pair["source"]), "overall"):
            hits.setdefault(key, []).append(counter > 0)
    return {k: sum(v) / len(v) for k, v in hits.items()}


def length_pairs(split: str) -> list[dict[str, Any]]:
    """The dataset's pairs judged by response length with JudgeBench's reward-model rule: in each order "A>B" iff the
    response shown first is strictly longer, else "B>A"."""
    rows = [json.loads(line) for line in (DATA / f"dataset=judgebench,response_model={split}.jsonl").open()]

    def rule(first: str, second: str) -> str:
        return "A>B" if len(first) > len(second) else "B>A"

    return [{**r, "judgments": [{"decision": rule(r["response_A"], r["response_B"])},
                                {"decision": rule(r["response_B"], r["response_A"])}]} for r in rows]


def published_runs() -> list[tuple[str, str, Path, list[dict[str, Any]]]]:
    """(model name, suite, file, its pairs) of each published run, the split read from the file's own rows."""
    runs = []
    for path in sorted(OUTPUTS.glob("*.jsonl")):
        pairs = [json.loads(line) for line in path.open()]
        (split,) = {p["response_model"] for p in pairs}
        judge = pairs[0]["judgments"][0]["judgment"]["judge_model"].split("/")[-1].lower()
        runs.append((f"{pairs[0]['judge_name']}-{judge}".replace("_", "-"), SUITES[split], path, pairs))
    return runs


def _suites(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": suite, "kind": "judgebench", "data": str(DATA), "split": split, **extra}
            for split, suite in SUITES.items()]


def _board(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["model"], e["suite"]): e for e in json.loads((out / "leaderboard.json").read_text())}


def _assert_entry(entry: dict[str, Any], expected: dict[str, float], n: int) -> None:
    assert (entry["n_items"], entry["n_errors"], entry["n_missing"]) == (n, 0, 0), entry
    assert entry["score"] == pytest.approx(expected["overall"], abs=1e-12), entry["model"]
    assert entry["sections"] == pytest.approx({k: v for k, v in expected.items() if k != "overall"}, abs=1e-12)


# ---- a new judge: JudgeBench's arena-hard judge on a scripted OpenAI-compatible server -------------------------

REPLIES = ["Here is my answer ... My final verdict is Assistant A is significantly better: [[A>>B]]",
           "Assistant B is slightly better: [[B>A]]", "My final verdict is tie: [[A=B]]", "I need more time.",
           "[[A>B]] on one reading, [[B>>A]] on another", "[[B>>A]]"]
SECOND = "Continuing: my final verdict is [[A>B]]"


def scripted_reply(conversation: list[dict[str, str]]) -> str:
    """The server's judge: a reply chosen by the hash of the user message; the continuation turn gets SECOND."""
    if conversation[-1]["content"] == ARENA_HARD_CONTINUE:
        return SECOND
    return REPLIES[int(hashlib.sha256(conversation[1]["content"].encode()).hexdigest(), 16) % len(REPLIES)]


class _ArenaHardAPI(JsonHandler):
    systems: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        self.send_json({"object": "list", "data": [{"id": "scripted-judge", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        type(self).systems.add(body["messages"][0]["content"])
        text = scripted_reply(body["messages"])
        self.send_json({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


def judgebench_decision(judgment: str) -> str | None:
    """utils/judges.py ArenaHard.get_score and the decision it returns."""
    matches = [m for m in re.compile(r"\[\[([AB<>=]+)\]\]").findall(judgment) if m != ""]
    return matches[0].strip("\n").replace(">>", ">").strip() if len(set(matches)) == 1 else None


def judgebench_judgment(question: str, answer_a: str, answer_b: str) -> dict[str, Any]:
    """ArenaHard.get_judgment against the scripted judge: the prompt rendered by Jinja as utils/prompts.py renders it,
    a second attempt where the first reply holds no mark, the replies joined as there."""
    env = jinja2.Environment(loader=jinja2.DictLoader({"system": AH_SYSTEM, "prompt": AH_USER}), trim_blocks=True,
                             lstrip_blocks=True)
    conversation = [{"role": "system", "content": env.get_template("system").render()},
                    {"role": "user", "content": env.get_template("prompt").render(prompt=question, answer_a=answer_a,
                                                                                  answer_b=answer_b)}]
    judgment = ""
    for _ in range(2):
        reply = scripted_reply(conversation)
        judgment += "\n" + reply
        if re.findall(r"\[\[([AB<>=]+)\]\]", judgment):
            break
        conversation += [{"role": "assistant", "content": reply}, {"role": "user", "content": ARENA_HARD_CONTINUE}]
    return {"decision": judgebench_decision(judgment)}


# ---- one sweep: the 7 published runs, the length baseline and a new judge, on both splits ----------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("judgebench")
    _ArenaHardAPI.systems = set()
    runs = published_runs()
    with serving(_ArenaHardAPI) as url:
        models: list[Any] = ["length", {"name": "new-judge", "kind": "judge", "backend": "openai",
                                        "base_url": f"{url}/v1", "path": "scripted-judge", "template": "arena_hard",
                                        "max_concurrency": 32}]
        models += [{"name": name, "kind": "published", "path": str(path), "suites": [suite]}
                   for name, suite, path, _ in runs]
        spec = write_spec(tmp / "spec.yaml", {"out": str(tmp / "out"), "resamples": 100, "suites": _suites(),
                                              "models": models})
        p = rmorch("sweep", spec, "--quiet", "--num-cpus", "2")
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return {"out": tmp / "out", "board": _board(tmp / "out"), "runs": runs, "systems": set(_ArenaHardAPI.systems)}


def test_published_runs_reproduce_judgebench(swept) -> None:
    runs, board = swept["runs"], swept["board"]
    assert len(runs) == 7 and {suite for _, suite, _, _ in runs} == set(SUITES.values())
    for name, suite, _, pairs in runs:
        expected = official(pairs)
        _assert_entry(board[(name, suite)], expected, len(pairs))
        judge = board[(name, suite)].get("judge")
        if pairs[0]["judge_name"] == "reward_model":  # replayed as each response's score: a reward model
            assert judge is None
        else:  # arena_hard: replayed as its decisions, in both orders, with the judge metrics
            assert judge["official"] == board[(name, suite)]["score"] and judge["n_orders"] == 2
            decisions = [j["decision"] if j is not None else None for p in pairs for j in p["judgments"]]
            read = sum(d in ("A>B", "B>A", "A=B", "B=A") for d in decisions)  # a tie is a verdict read
            assert (judge["verdicts_read"], judge["verdict_rows"]) == (read, len(decisions))
    # the README's example, to the published two decimals
    skywork = board[("reward-model-skywork-reward-gemma-2-27b", "judgebench")]
    assert [round(100 * skywork["sections"][k], 2) for k in ("Knowledge", "Reasoning", "Math", "Coding")] == \
        [59.74, 66.33, 83.93, 50.0] and round(100 * skywork["score"], 2) == 64.29


def test_length_baseline_follows_the_reward_model_rule(swept) -> None:
    for split, suite in SUITES.items():
        pairs = length_pairs(split)
        _assert_entry(swept["board"][("length", suite)], official(pairs), len(pairs))


def test_a_new_judge_is_ranked_beside_the_papers(swept) -> None:
    """JudgeBench's ArenaHard judge re-run here against the same scripted replies (their prompt rendering, second
    attempt, verdict rule and metric) gives the new judge's number; it sits on each split's board with the paper's
    judges."""
    assert swept["systems"] == {AH_SYSTEM}
    board = swept["board"]
    for suite in SUITES.values():
        items = pq.read_table(swept["out"] / "items" / f"{suite}.parquet").to_pylist()
        pairs = [{"label": "A>B" if it["correct"] == [0] else "B>A", "source": it["subset"],
                  "judgments": [judgebench_judgment(it["prompt"][0]["content"], *it["candidates"]),
                                judgebench_judgment(it["prompt"][0]["content"], *it["candidates"][::-1])]}
                 for it in items]
        entry = board[("new-judge", suite)]
        _assert_entry(entry, official(pairs), len(items))
        assert entry["judge"]["n_orders"] == 2 and entry["judge"]["n_compared_items"] == len(items)
        assert entry["extra"]["decisions"]["tie"] > 0  # [[A=B]] replies: read, no winner
        assert entry["extra"]["decisions"]["unparsed"] > 0  # ambiguous replies
        ranked = {m for (m, s) in board if s == suite}
        assert {"new-judge", "length"} < ranked and all(board[(m, suite)]["n_items"] == len(items) for m in ranked)
