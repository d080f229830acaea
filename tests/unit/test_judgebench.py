"""JudgeBench (suites/judgebench.py) and its arena-hard judge (`template: arena_hard`, `parser: arena_hard`): the loader
on the real data in ../shared/data/judgebench, the official metric on hand-computed pairs, the arena-hard verdict rule
against a re-implementation of JudgeBench's own (utils/judges.py ArenaHard.get_score, utils/metrics.py, at
ScalerLab/JudgeBench e2c52c2), the prompt against their Jinja templates, the judge on a scripted generator (no vLLM),
the plan's refusal of one-order judges and the template text in a judge's identity.

The published JudgeBench runs replayed through the real CLI: tests/test_judgebench.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections import Counter
from pathlib import Path

import jinja2
import pyarrow as pa
import pytest

import rmorch.actors.judge as judge_module
import rmorch.actors.judge_prompts as prompts_module
from rmorch.actors.backends.generation import Generation
from rmorch.actors.base import ActorContext, CompareRequest, Presentation
from rmorch.actors.judge import ARENA_HARD_CONTINUE, Judge, JudgeConfig
from rmorch.actors.judge_official_prompts import AH_SYSTEM, AH_USER
from rmorch.actors.judge_prompts import (
    BUILTIN,
    arena_hard_decision,
    comparison_values,
    messages,
    parse_choice,
    prompt_echo,
    read_verdict,
)
from rmorch.actors.worker import ShardTask, result_rows, shard_requests
from rmorch.core.errors import DataError, SpecError, UserError
from rmorch.core.model_spec import ModelSpec
from rmorch.core.schema import items_table, results_table
from rmorch.orchestrator.plan.provenance import Environment, identity, provenance
from rmorch.orchestrator.plan.units import load_suite, make_units
from rmorch.orchestrator.spec.parse import spec_from_dict
from rmorch.suites import get_suite_class
from rmorch.suites.judgebench import JudgeBench, judgebench_credits, pair_sum, score_decisions, section_of
from tests.conftest import SHARED_DATA

DATA = SHARED_DATA / "judgebench"
GPT, CLAUDE = "gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620"


# ---- the loader, on the real data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt_items() -> pa.Table:
    return JudgeBench().load(str(DATA))


def _raw(split: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / f"dataset=judgebench,response_model={split}.jsonl").open()]


@pytest.mark.parametrize("split, n, sections, a_first", [
    (GPT, 350, {"Knowledge": 154, "Reasoning": 98, "Math": 56, "Coding": 42}, 193),
    (CLAUDE, 270, {"Knowledge": 154, "Reasoning": 51, "Math": 34, "Coding": 31}, 143),
])
def test_each_split_loads_as_the_readme_counts(split, n, sections, a_first) -> None:
    items = JudgeBench().load(str(DATA), split if split != GPT else None)  # the GPT-4o pairs are the default
    assert items.num_rows == n
    assert Counter(section_of(s) for s in items.column("subset").to_pylist()) == sections
    assert [c[0] for c in items.column("correct").to_pylist()].count(0) == a_first
    raw = {r["pair_id"]: r for r in _raw(split)}
    for item in items.to_pylist():
        r = raw[item["item_id"]]
        assert item["subset"] == r["source"] and item["suite"] == "judgebench"
        assert item["prompt"] == [{"role": "user", "content": r["question"]}]
        assert item["candidates"] == [r["response_A"], r["response_B"]]
        assert item["correct"] == [0 if r["label"] == "A>B" else 1]
        meta = json.loads(item["meta"])
        assert meta["label"] == r["label"] and meta["response_model"] == split
        assert meta.get("original_id") == r["original_id"]  # null for LiveBench / LiveCodeBench rows: left out


def test_a_single_file_and_an_unknown_split(tmp_path) -> None:
    claude = DATA / f"dataset=judgebench,response_model={CLAUDE}.jsonl"
    assert JudgeBench().load(str(claude), CLAUDE).num_rows == 270
    with pytest.raises(DataError, match=rf"no pairs of response model '{GPT}'.*{CLAUDE} \(270 pairs\)"):
        JudgeBench().load(str(claude))  # the default split is not in this file
    with pytest.raises(DataError, match=r"no pairs of response model 'gpt-4o'.*gpt-4o-2024-05-13 \(350 pairs\)"):
        JudgeBench().load(str(DATA), "gpt-4o")
    with pytest.raises(UserError, match="split 'gpt-4o' is none of the hub's response models"):
        JudgeBench().load(None, "gpt-4o")


@pytest.mark.parametrize("change, field, message", [
    ({"source": "mmlu-redux-law"}, "source", "unknown JudgeBench source"),
    ({"label": "A=B"}, "label", "expected label 'A>B' or 'B>A'"),
    ({"response_B": ""}, "response_B", "empty string"),
    ({"pair_id": None}, "pair_id", "expected a string"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, change, field, message) -> None:
    rows = _raw(GPT)[:3]
    rows[1] = {**rows[1], **change}
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        JudgeBench().load(str(path))
    assert err.value.row == 2 and err.value.field == field and message in str(err.value)


# ---- the metric, by hand ------------------------------------------------------------------------------------------


def test_pair_sum_and_the_reward_model_rule() -> None:
    assert pair_sum([0, 0], 0) == 2 and pair_sum([1, 1], 0) == -2
    assert pair_sum([0, 1], 0) == 0  # one right, one wrong: not correct
    assert pair_sum([0, None], 0) == 1  # one right beside a tie or no verdict: correct
    assert pair_sum([None, None], 1) == 0 and pair_sum([None, 0], 1) == -1
    assert score_decisions([2.0, 1.0]) == (0, 0) and score_decisions([1.0, 2.0]) == (1, 1)
    assert score_decisions([1.5, 1.5]) == (1, 0)  # a tie names the second shown in each order: sum 0 for any label


def _items(specs: list[tuple[str, str, int]]) -> pa.Table:
    """Items (pair id, source, correct candidate)."""
    return items_table({"suite": "judgebench", "subset": src, "item_id": pid, "prompt": [{"role": "user",
                        "content": "q"}], "candidates": ["a", "b"], "correct": [good]} for pid, src, good in specs)


def _verdict(pid: str, order: tuple[int, int], perm: int, verdict: int | None, parsed: bool | None = True,
             error: str | None = None) -> dict:
    return {"model": "j", "suite": "judgebench", "item_id": pid, "subset": "x", "order": list(order),
            "permutation": perm, "verdict": verdict, "parsed": parsed, "error": error}


def test_judge_pairs_hand_computed() -> None:
    items = _items([("both", "mmlu-pro-law", 0), ("split", "mmlu-pro-law", 0), ("tie", "livebench-math", 1),
                    ("unparsed", "livebench-math", 1), ("ties", "livebench-reasoning", 0),
                    ("wrong", "livecodebench", 0), ("error", "livecodebench", 0), ("one-order", "livecodebench", 1)])
    rows = [
        _verdict("both", (0, 1), 0, 0), _verdict("both", (1, 0), 1, 0),  # right twice: +2
        _verdict("split", (1, 0), 0, 0), _verdict("split", (0, 1), 1, 1),  # right, wrong: 0
        _verdict("tie", (0, 1), 0, 1), _verdict("tie", (1, 0), 1, None),  # right, tie (read): +1
        _verdict("unparsed", (1, 0), 0, None, parsed=False), _verdict("unparsed", (0, 1), 1, 1),  # +1
        _verdict("ties", (0, 1), 0, None), _verdict("ties", (1, 0), 1, None),  # 0
        _verdict("wrong", (0, 1), 0, 1), _verdict("wrong", (1, 0), 1, None, parsed=False),  # -1
        _verdict("error", (0, 1), 0, 0), _verdict("error", (1, 0), 1, None, None, error="timeout"),  # wrong, flagged
        _verdict("one-order", (0, 1), 0, 1),  # the swapped order is missing: wrong, flagged
    ]
    credit, bad, extra = judgebench_credits(items, results_table(rows))
    assert credit == [1, 0, 1, 1, 0, 0, 0, 0]
    assert bad == [False] * 6 + [True, True]
    assert extra == {"pairs": {"correct": 3, "even": 2, "incorrect": 1},
                     "decisions": {"right": 7, "wrong": 2, "tie": 3, "unparsed": 2}}  # every row's, flagged pairs' too
    score = JudgeBench().score(items, results_table(rows))
    # Knowledge 1/2, Math 2/2, Reasoning 0/1, Coding 0/3; overall over pairs 3/8, not the mean of sections (0.375)
    assert score.sections == {"Knowledge": 0.5, "Reasoning": 0.0, "Math": 1.0, "Coding": 0.0}
    assert score.score == 3 / 8 and score.n_errors == 2 and score.n_items == 8
    assert score.subsets == {"mmlu-pro-law": 0.5, "livebench-math": 1.0, "livebench-reasoning": 0.0,
                             "livecodebench": 0.0}
    assert score.judge is not None and score.judge["official"] == 3 / 8 and score.judge["n_orders"] == 2
    assert score.judge["verdicts_read"] == 12 and score.judge["parse_failure_rate"] == 2 / 14  # a tie is read
    # the bootstrap's fast path agrees with the score: sections and overall from subset means and counts
    counts = Counter(items.column("subset").to_pylist())
    assert JudgeBench().combine_subsets(score.subsets, counts) == (score.score, score.sections)


def test_reward_model_pairs_hand_computed() -> None:
    items = _items([("a", "mmlu-pro-math", 0), ("b", "mmlu-pro-math", 1), ("tie-a", "livecodebench", 0),
                    ("tie-b", "livecodebench", 1), ("wrong", "livebench-math", 0), ("nan", "livebench-math", 1),
                    ("error", "livebench-math", 1)])
    scores = {"a": (2.0, 1.0), "b": (-3.0, -1.0), "tie-a": (0.5, 0.5), "tie-b": (7.0, 7.0), "wrong": (0.0, 1.0),
              "nan": (math.nan, 1.0), "error": (1.0, None)}
    rows = [{"model": "rm", "suite": "judgebench", "item_id": pid, "subset": "x", "candidate": c, "score": s,
             "error": None if s is not None else "boom"} for pid, pair in scores.items() for c, s in enumerate(pair)]
    credit, bad, extra = judgebench_credits(items, results_table(rows))
    assert credit == [1, 1, 0, 0, 0, 0, 0]  # an exact tie is never correct, whichever response is right
    assert bad == [False] * 5 + [True, True]
    assert extra["pairs"] == {"correct": 2, "even": 2, "incorrect": 1}
    assert extra["decisions"] == {"right": 6, "wrong": 4, "tie": 0, "unparsed": 0}
    score = JudgeBench().score(items, results_table(rows))
    assert score.judge is None and score.score == 2 / 7
    assert score.sections == {"Knowledge": 1.0, "Math": 0.0, "Coding": 0.0}


def test_the_official_metric_on_a_published_run(gpt_items) -> None:
    """JudgeBench's own metrics.py rule on the raw Skywork-Reward-Gemma-2-27B file gives the README's numbers, and so
    does the suite from the file's scores."""
    path = DATA / "outputs" / ("dataset=judgebench,response_model=gpt-4o-2024-05-13,judge_name=reward_model,"
                               "judge_model=Skywork_Skywork-Reward-Gemma-2-27B.jsonl")
    pairs = [json.loads(line) for line in path.open()]
    reference = official_metric(pairs)
    assert {k: round(100 * v, 2) for k, v in reference.items()} == {
        "Knowledge": 59.74, "Reasoning": 66.33, "Math": 83.93, "Coding": 50.0, "overall": 64.29}
    rows = [{"model": "rm", "suite": "judgebench", "item_id": p["pair_id"], "subset": p["source"], "candidate": c,
             "score": p["judgments"][0]["judgment"]["scores"][c]} for p in pairs for c in (0, 1)]
    score = JudgeBench().score(gpt_items, results_table(rows))
    assert {**score.sections, "overall": score.score} == pytest.approx(reference, abs=1e-12)


def official_metric(pairs: list[dict]) -> dict[str, float]:
    """JudgeBench's utils/metrics.py (compute_final_metrics, reverse_order) per category and overall."""
    flip = {"A>B": "B>A", "B>A": "A>B"}
    hits: dict[str, list[bool]] = {}
    for pair in pairs:
        first, second = pair["judgments"]
        d1 = first["decision"] if first is not None else None
        d2 = second["decision"] if second is not None else None
        d2 = flip.get(d2, d2)
        counter = sum(1 if d == pair["label"] else -1 if d == flip[pair["label"]] else 0 for d in (d1, d2))
        for key in (section_of(pair["source"]), "overall"):
            hits.setdefault(key, []).append(counter > 0)
    return {k: sum(v) / len(v) for k, v in hits.items()}


# ---- the arena-hard verdict rule ----------------------------------------------------------------------------------


def judgebench_get_score(judgment: str) -> str | None:
    """JudgeBench's ArenaHard.get_score + its decision step (utils/judges.py), as written there."""
    matches = [m for m in re.compile(r"\[\[([AB<>=]+)\]\]").findall(judgment) if m != ""]
    if len(set(matches)) == 1:
        return matches[0].strip("\n").replace(">>", ">").strip()
    return None


CASES = [
    ("My final verdict is Assistant A is significantly better: [[A>>B]]", 0, True),
    ("slightly: [[A>B]]", 0, True),
    ("[[B>A]]", 1, True),
    ("Assistant B is significantly better: [[B>>A]]", 1, True),
    ("My final verdict is tie: [[A=B]]", None, True),  # a tie: read, no winner
    ("[[B=A]]", None, True),
    ("[[A>B]] ... on reflection [[A>B]]", 0, True),  # the same mark twice is one decision
    ("[[A>B]] or rather [[A>>B]]", None, False),  # two distinct marks: ambiguous, as JudgeBench
    ("[[A>B]] [[B>A]]", None, False),
    ("[[A<B]]", None, False),  # a mark JudgeBench's metric counts 0
    ("[[AB]]", None, False),
    ("[[A]]", None, False),
    ("[[a>b]]", None, False),  # JudgeBench's pattern is exact: case and spacing
    ("[[ A>B ]]", None, False),
    ("Assistant A is better.", None, False),
    ("", None, False),
]


@pytest.mark.parametrize("text, choice, read", CASES)
def test_arena_hard_rule(text, choice, read) -> None:
    assert parse_choice(text, 2, "arena_hard") == choice
    assert read_verdict(text, 2, "arena_hard") == (choice, read)
    assert arena_hard_decision(text) == judgebench_get_score(text)  # their decision, exactly
    assert parse_choice(text, 4, "arena_hard") is None  # pairwise only


def test_an_echo_of_the_prompt_is_no_verdict() -> None:
    """The system prompt lists all five marks: echoed, it gives nothing (JudgeBench: ambiguous, nothing too); a
    verdict after the echo is read (JudgeBench would find it ambiguous), and so is one quoted in neither."""
    template = BUILTIN["arena_hard"]["pairwise"]
    values = comparison_values("Which is prime? [[A>B]]", ["7 [[B>>A]]", "8"])
    echo = prompt_echo(template, values)
    system, user = (m["content"] for m in messages(template, values, "system"))
    assert read_verdict(system, 2, "arena_hard", echo) == (None, False)
    assert read_verdict(user, 2, "arena_hard", echo) == (None, False)  # marks inside the question and a response
    assert read_verdict(f"{system}\n\nMy final verdict: [[B>A]]", 2, "arena_hard", echo) == (1, True)
    assert judgebench_get_score(f"{system}\n\nMy final verdict: [[B>A]]") is None
    assert read_verdict("My final verdict is tie: [[A=B]]", 2, "arena_hard", echo) == (None, True)


# ---- the prompt: JudgeBench's templates, rendered as Jinja renders them ------------------------------------------


def test_the_prompt_is_judgebenchs_byte_for_byte() -> None:
    # sha256 of utils/templates/arena_hard_judge_system.jinja2 and arena_hard_judge_prompt.jinja2 at e2c52c2
    assert hashlib.sha256(AH_SYSTEM.encode()).hexdigest() == \
        "03f68010febd7a6405102ef882b4dd5a9700c56b2e1ff286d3b38f5d3a929bbf"
    assert hashlib.sha256(AH_USER.encode()).hexdigest() == \
        "16c2290ec6737343982773be71f80bd1caa8a8eaffe65077736586252ddda4c3"
    env = jinja2.Environment(loader=jinja2.DictLoader({"system": AH_SYSTEM, "prompt": AH_USER}), trim_blocks=True,
                             lstrip_blocks=True)  # utils/prompts.py
    template = BUILTIN["arena_hard"]["pairwise"]
    assert template.source == "builtin:arena_hard" and template.placeholders() == {"question", "response_a",
                                                                                  "response_b"}
    question, a, b = "What is {{x}}?\n{% raw %}", "Answer {{response_b}} {0} \\1 [[B>A]]", "B's answer\n\n"
    msgs = messages(template, comparison_values(question, [a, b]), "system")
    assert msgs == [{"role": "system", "content": env.get_template("system").render()},
                    {"role": "user", "content": env.get_template("prompt").render(prompt=question, answer_a=a,
                                                                                  answer_b=b)}]


# ---- the judge, on a scripted generator ---------------------------------------------------------------------------


class Scripted:
    """Replies `reply(conversation)` and records every conversation it is sent."""

    backend, dtype, chat_template, max_model_len = "scripted", None, "tokenizer", None

    def __init__(self, reply):
        self.reply, self.seen = reply, []

    def prompt_tokens(self, messages, images=None):
        return None

    def generate(self, conversations, sampling, seeds, images=None):
        self.seen += conversations
        return [Generation(text=self.reply(c), n_output_tokens=3) for c in conversations]

    def close(self) -> None:
        pass


def _judge(monkeypatch, reply, **config) -> tuple[Judge, Scripted]:
    gen = Scripted(reply)
    monkeypatch.setattr(judge_module, "_make_generator", lambda *args: gen)
    config = {"template": "arena_hard", "max_model_len": 8192, **config}
    return Judge(JudgeConfig(path="m", **config), ActorContext(), "judge"), gen


def test_config_defaults_and_refusals() -> None:
    c = JudgeConfig(path="m", template="arena_hard", max_model_len=32768)
    assert (c.parser, c.permutations, c.max_tokens, c.temperature) == ("arena_hard", "both", 4096, 0.0)
    with pytest.raises(SpecError, match=r"template arena_hard generates up to 4096 tokens .* set max_model_len"):
        JudgeConfig(path="m", template="arena_hard")  # the default context cannot hold JudgeBench's budget
    assert JudgeConfig(path="m", template="arena_hard", max_tokens=1024).max_tokens == 1024
    with pytest.raises(SpecError, match="has no nway prompt"):
        JudgeConfig(path="m", template="arena_hard", protocol="nway", max_model_len=32768)
    with pytest.raises(SpecError, match="pairwise verdicts only"):
        JudgeConfig(path="m", parser="arena_hard", protocol="rating")
    with pytest.raises(SpecError, match="use `verdict: text`"):
        JudgeConfig(path="m", template="arena_hard", verdict="logprobs", max_tokens=16)


def test_the_judge_sends_judgebenchs_prompt_and_reads_ties(monkeypatch) -> None:
    replies = {"q1": "... [[A>>B]]", "q2": "[[B>A]]", "q3": "My final verdict is tie: [[A=B]]",
               "q4": "[[A>B]] hmm [[B>A]]"}
    judge, gen = _judge(monkeypatch, lambda c: next(v for k, v in replies.items() if f"\n{k}\n" in c[1]["content"]))
    out = judge.score([CompareRequest(q, (0, 1), 0, [{"role": "user", "content": q}], ("ra", "rb"))
                       for q in replies])
    assert [(o.choice, o.parsed) for o in out] == [(0, True), (1, True), (None, True), (None, False)]
    assert gen.seen[0] == [{"role": "system", "content": AH_SYSTEM}, {"role": "user", "content": AH_USER.replace(
        "{{prompt}}", "q1").replace("{{answer_a}}", "ra").replace("{{answer_b}}", "rb")}]
    assert len(gen.seen) == 4  # every reply held a mark: no second attempt


def test_a_reply_without_a_mark_is_asked_once_more(monkeypatch) -> None:
    """As JudgeBench's ArenaHard judge: the reply and "continue your judgment ..." are added to the conversation,
    and the verdict is read from both replies joined by a newline. Ambiguous replies are not asked again."""
    def reply(conversation):
        if conversation[-1]["content"] == ARENA_HARD_CONTINUE:
            return "[[B>>A]]" if "first" in conversation[1]["content"] else "still thinking"
        return "[[A>B]] [[B>A]]" if "ambiguous" in conversation[1]["content"] else "Let me think."

    judge, gen = _judge(monkeypatch, reply)
    reqs = [CompareRequest(q, (1, 0), 1, [{"role": "user", "content": q}], ("x", "y"))
            for q in ("first", "second", "ambiguous")]
    out = judge.score(reqs)
    assert [(o.choice, o.parsed) for o in out] == [(1, True), (None, False), (None, False)]
    assert out[0].raw_output == "Let me think.\n[[B>>A]]" and out[1].raw_output == "Let me think.\nstill thinking"
    assert out[2].raw_output == "[[A>B]] [[B>A]]"
    again = gen.seen[3:]
    assert len(again) == 2 and all(c[:2] == gen.seen[k] for k, c in enumerate(again))
    assert [c[2:] for c in again] == [[{"role": "assistant", "content": "Let me think."},
                                       {"role": "user", "content": ARENA_HARD_CONTINUE}]] * 2


def test_judge_rows_through_the_suite(monkeypatch, gpt_items) -> None:
    """Items -> both orders' requests -> the judge -> result rows -> JudgeBench's metric, against their rule applied
    to the same replies."""
    items = gpt_items.slice(0, 24)
    replies = ["[[A>>B]]", "[[B>A]]", "[[A=B]]", "nothing", "[[A>B]] [[B>>A]]", "[[B>>A]]"]

    def reply(conversation):
        if conversation[-1]["content"] == ARENA_HARD_CONTINUE:
            return "[[A=B]]"
        return replies[int(hashlib.sha256(conversation[1]["content"].encode()).hexdigest(), 16) % len(replies)]

    judge, _ = _judge(monkeypatch, reply)
    presentation = judge.presentation(judge.config)
    assert presentation == Presentation("pairwise", "both")
    tables = []
    for p in (0, 1):
        task = ShardTask("u", "judge", "judgebench", 0, items.num_rows, p, seed=0)
        reqs = shard_requests(items, presentation, task)
        tables.append(result_rows(task, items, reqs, judge.score(reqs), judge.settings(), "h"))
    results = pa.concat_tables(tables)
    # the reference: JudgeBench's decisions from the same raw outputs, mapped to the original order
    decisions: dict[str, dict[tuple[int, ...], str | None]] = {}
    for row in results.to_pylist():
        d = judgebench_get_score("\n" + row["raw_output"])
        decisions.setdefault(row["item_id"], {})[tuple(row["order"])] = d
    pairs = [{"label": "A>B" if it["correct"] == [0] else "B>A", "source": it["subset"],
              "judgments": [{"decision": decisions[it["item_id"]][(0, 1)]},
                            {"decision": decisions[it["item_id"]][(1, 0)]}]} for it in items.to_pylist()]
    score = JudgeBench().score(items, results)
    assert {**score.sections, "overall": score.score} == pytest.approx(official_metric(pairs), abs=1e-12)
    assert score.n_errors == 0 and score.judge["n_orders"] == 2


# ---- the plan and the identity ------------------------------------------------------------------------------------


def _plan(**judge_keys) -> None:
    spec = spec_from_dict({"suites": [{"name": "judgebench", "data": str(DATA), "limit_per_subset": 1}],
                           "models": [{"name": "j", "kind": "judge", "path": "org/judge", **judge_keys}]})
    make_units(spec, [load_suite(spec.suites[0], spec.seed)])


def test_the_plan_refuses_a_judge_shown_one_order() -> None:
    with pytest.raises(SpecError, match=r"models\.j\.permutations.*judgebench needs every item judged in at least 2 "
                                        r"orders.*permutations 'single' show 1: set `permutations: both`"):
        _plan(template="rewardbench")  # its default is the official single order
    _plan(template="rewardbench", permutations="both")
    _plan(template="arena_hard", max_model_len=32768)


def test_the_built_in_template_text_is_part_of_the_identity(monkeypatch) -> None:
    env = Environment(packages={"vllm": "0.1", "torch": "2.0", "transformers": "4.0"}, hardware={"cpu": "x"})

    def ident(**keys) -> str:
        model = ModelSpec("j", "judge", JudgeConfig(path="org/judge", max_model_len=32768, **keys))
        return identity(model, provenance(model, env), 0)

    before = ident(template="arena_hard")
    assert before != ident(template="arena_hard", parser="strict") != ident()
    assert "texts" in provenance(ModelSpec("j", "judge", JudgeConfig(path="m", template="rewardbench")), env)
    assert "texts" not in provenance(ModelSpec("j", "judge", JudgeConfig(path="m")), env)
    edited = dataclasses.replace(BUILTIN["arena_hard"]["pairwise"], system=AH_SYSTEM.replace("impartial", "fair"))
    monkeypatch.setitem(prompts_module.BUILTIN, "arena_hard", {"pairwise": edited})
    assert ident(template="arena_hard") != before  # an edited built-in prompt is another identity


def test_the_suite_is_registered() -> None:
    assert get_suite_class("judgebench") is JudgeBench and JudgeBench.min_orders == 2
    assert Path(JudgeBench.__module__.replace(".", "/")).name == "judgebench"
