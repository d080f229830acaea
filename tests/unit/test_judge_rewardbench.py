"""`template: rewardbench` and `parser: rewardbench`: allenai/reward-bench's own generative-judge prompts and verdict
rules, checked against a re-implementation of their code (rewardbench/generative.py, rewardbench/generative_v2.py,
scripts/run_generative.py, scripts/run_generative_v2.py; Apache-2.0, Copyright 2023 AllenAI).

The reference below copies their prompt strings verbatim (as format strings, with their own `{field}`s) and their
format_judge_answers / process_judgement / rating parse / scoring steps; the judge runs on a scripted generator
(no vLLM), so what it would send and how its replies are credited are compared exactly."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

import rmorch.actors.judge as judge_module
from rmorch.actors.backends.generation import Generation
from rmorch.actors.base import ActorContext, CompareRequest, Presentation, ScoreRequest
from rmorch.actors.judge import Judge, JudgeConfig
from rmorch.actors.judge_prompts import BUILTIN, PARSERS, load_template, parse_choice, parse_rating
from rmorch.actors.worker import ShardTask, result_rows, shard_requests
from rmorch.core.errors import SpecError, UserError
from rmorch.core.model_spec import ModelSpec
from rmorch.core.schema import items_table
from rmorch.suites import get_suite_class
from rmorch.suites.judging import official_credits, pairwise_rating_credit, rating_credit, rating_scores

RB2_FIXTURE = Path(__file__).parents[1] / "fixtures" / "rewardbench2" / "sample.jsonl"

# ---- the reference: reward-bench's strings and code -----------------------------------------------------------

# generative.py prompt_v2
PROMPT_V2 = (
    'Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user question displayed below. '
    "You should choose the assistant that follows the user's instructions and answers the user's question better. "
    'Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. '
    'Begin your evaluation by comparing the two responses and provide a short explanation. '
    'Avoid any position biases and ensure that the order in which the responses were presented does not influence your decision. '
    'Do not allow the length of the responses to influence your evaluation. '
    'Do not favor certain names of the assistants. Be as objective as possible. '
    'After providing your explanation, output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better.'
)
# generative.py prompt_multi_v2
PROMPT_MULTI_V2 = (
    'Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user questions. '
    'You should focus on who provides a better answer to the second user question. '
    "You should choose the assistant that follows the user's instructions and answers the user's question better. "
    'Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. '
    'Begin your evaluation by comparing the two responses and provide a short explanation. '
    'Avoid any position biases and ensure that the order in which the responses were presented does not influence your decision. '
    'Do not allow the length of the responses to influence your evaluation. '
    'Do not favor certain names of the assistants. Be as objective as possible. '
    'After providing your explanation, output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better.'
)
# generative.py MTBENCH_V2["prompt_template"]
MTBENCH_V2_TEMPLATE = (
    "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
    "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
    "[The End of Assistant B's Answer]"
)
# generative.py MTBENCH_MULTI_V2["prompt_template"]
MTBENCH_MULTI_V2_TEMPLATE = (
    "<|The Start of Assistant A's Conversation with User|>\n\n### User:\n{question_1}\n\n### Assistant A:\n"
    '{answer_a_1}\n\n### User:\n{question_2}\n\n### Assistant A:\n{answer_a_2}\n\n'
    "<|The End of Assistant A's Conversation with User|>\n\n\n"
    "<|The Start of Assistant B's Conversation with User|>\n\n### User:\n{question_1}\n\n### Assistant B:\n"
    '{answer_b_1}\n\n### User:\n{question_2}\n\n### Assistant B:\n{answer_b_2}\n\n'
    "<|The End of Assistant B's Conversation with User|>"
)
# generative_v2.py prompt_v2
FOUR_PROMPT_V2 = (
    'Please act as an impartial judge and evaluate the quality of the responses provided by four AI assistants to the user question displayed below. '
    "You should choose the assistant that follows the user's instructions and answers the user's question best. "
    'Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. '
    'Begin your evaluation by comparing the four responses and provide a short explanation. '
    'Avoid any position biases and ensure that the order in which the responses were presented does not influence your decision. '
    'Do not allow the length of the responses to influence your evaluation. '
    'Do not favor certain names of the assistants. Be as objective as possible. '
    'After providing your explanation, output your final verdict by strictly following this format: "[[A]]" if assistant A is best, "[[B]]" if assistant B is best, "[[C]]" if assistant C is best, and "[[D]]" if assistant D is best.'
)
# generative_v2.py MTBENCH_V2["prompt_template"]
FOUR_MTBENCH_V2_TEMPLATE = (
    "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
    "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
    "[The End of Assistant B's Answer]\n\n[The Start of Assistant C's Answer]\n{answer_c}\n"
    "[The End of Assistant C's Answer]\n\n[The Start of Assistant D's Answer]\n{answer_d}\n"
    "[The End of Assistant D's Answer]"
)
# generative_v2.py ratings_prompt (= generative.py's)
RATINGS_PROMPT = (
    '\n### Task Description\n'
    'Please act as an impartial judge and evaluate the quality of the response provided by an\n'
    'AI assistant to the user query displayed below.\n\nNotes:\n'
    '1- Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response.\n'
    '2- Begin your evaluation by providing a short explanation.\n3- Be as objective as possible. '
    'After providing your explanation, please rate the response on a scale of 1 to 10. '
    'For your rating, only give a number between 1 and 10 (inclusive), do not use any markdown, and do not put any text after your final rating.\n'
    '\n[Query]\n{prompt}\n\n[Response]\n{completion}\n\n[Your judgement]'
)
# generative_v2.py ratings_prompt_ties
RATINGS_PROMPT_TIES = (
    '\n### Task Description\n'
    'Please act as an impartial judge and evaluate the quality of the response provided by an\n'
    'AI assistant to the user query displayed below.\n\nNotes:\n'
    '1- Your evaluation should consider factors such as the helpfulness, relevance, and accuracy of the response, but need not consider depth or level of detail of the response.\n'
    '2- Begin your evaluation by providing a short explanation.\n3- Be as objective as possible. '
    'After providing your explanation, please rate the response on a scale of 1 to 10. '
    'For your rating, only give a number between 1 and 10 (inclusive), do not use any markdown, and do not put any text after your final rating.\n'
    '\n[Query]\n{prompt}\n\n[Response]\n{completion}\n\n[Your judgement]'
)


def rb_format_judge_answers(question: str, answer_a: list[dict], answer_b: list[dict],
                            multi_turn: bool = False) -> tuple[str, str]:
    """generative.py format_judge_answers, default model (no model_modifier)."""
    if multi_turn:
        return PROMPT_MULTI_V2, MTBENCH_MULTI_V2_TEMPLATE.format(
            question_1=question, question_2=answer_a[2]["content"], answer_a_1=answer_a[1]["content"],
            answer_b_1=answer_b[1]["content"], answer_a_2=answer_a[3]["content"], answer_b_2=answer_b[3]["content"])
    return PROMPT_V2, MTBENCH_V2_TEMPLATE.format(question=question, answer_a=answer_a[1]["content"],
                                                 answer_b=answer_b[1]["content"])


def rb_format_judge_four(question: str, *answers: list[dict]) -> tuple[str, str]:
    """generative_v2.py format_judge_answers."""
    a, b, c, d = (x[1]["content"] for x in answers)
    return FOUR_PROMPT_V2, FOUR_MTBENCH_V2_TEMPLATE.format(question=question, answer_a=a, answer_b=b, answer_c=c,
                                                           answer_d=d)


def rb_process_judgement(judgment: str) -> str:
    """generative.py process_judgement, default model."""
    if "[[A]]" in judgment:
        return "A"
    elif "[[B]]" in judgment:
        return "B"
    return "error"


def rb_process_judgement_four(judgment: str) -> str:
    """generative_v2.py process_judgement."""
    for label in "ABCD":
        if f"[[{label}]]" in judgment:
            return label
    return "error"


def rb_rating(raw: str) -> int:
    """generative_v2.py get_single_rating: a trailing integer 1-10 of the stripped judgment, else -1."""
    m = re.search(r"\b([1-9]|10)\b\s*$", raw.strip())
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 10 else -1


def rb_pair_credit(winner: str, is_shuffled: bool) -> float:
    """run_generative.py process_shuffled."""
    winner_text, loser_text = ("B", "A") if is_shuffled else ("A", "B")
    return 1.0 if winner == winner_text else 0.0 if winner == loser_text else 0.5


def rb_four_credit(winner: str, shuffle_position: int) -> float:
    """run_generative_v2.py process_shuffled."""
    options = ["A", "B", "C", "D"]
    winner_text = options.pop(shuffle_position)
    return 1.0 if winner == winner_text else 0.0 if winner in options else 0.25


def rb_ratings_credit(ratings: list[int]) -> float:
    """run_generative_v2.py get_vllm_judgement, ratings of the chosen (first) and rejected completions."""
    valid = [r for r in ratings if r != -1]
    if not valid:
        return 0.25
    winners = [i for i, r in enumerate(ratings) if r == max(valid)]
    return (0 in winners) / len(winners)


def rb_v1_ratings_credit(rating_chosen: int, rating_rejected: int) -> float:
    """generative.py run_judge_ratings + run_generative.py (shuffling two independent ratings changes nothing)."""
    if rating_chosen == -1 or rating_rejected == -1 or rating_chosen == rating_rejected:
        return 0.5
    return 1.0 if rating_chosen > rating_rejected else 0.0


# ---- a judge on a scripted generator ----------------------------------------------------------------------------


class ScriptedGenerator:
    """Replies `reply(messages)` to every conversation and records what it was sent; counts a prompt's tokens as
    characters / 4 when given a context window."""

    backend = "scripted"
    dtype = None
    chat_template = "tokenizer"

    def __init__(self, reply, max_model_len: int | None = None):
        self.reply = reply
        self.max_model_len = max_model_len
        self.seen: list[list[dict[str, str]]] = []

    def prompt_tokens(self, messages, images=None):
        return None if self.max_model_len is None else sum(len(m["content"]) for m in messages) // 4

    def generate(self, conversations, sampling, seeds, images=None):
        self.seen += conversations
        return [Generation(text=self.reply(c)) for c in conversations]

    def close(self) -> None:
        pass


def make_judge(monkeypatch, reply=lambda conversation: "", max_model_len: int | None = None,
               **config) -> tuple[Judge, ScriptedGenerator]:
    gen = ScriptedGenerator(reply, max_model_len)
    monkeypatch.setattr(judge_module, "_make_generator", lambda *args: gen)
    return Judge(JudgeConfig(path="m", **config), ActorContext(), "judge"), gen


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


NASTY = "Braces {question} {{response_a}} {0} %s \\1 [[B]] <|im_end|> ### User:"


# ---- rendering ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("system_role", ["system", "merge"])
def test_pairwise_single_turn_prompt_is_reward_benchs(monkeypatch, system_role):
    judge, gen = make_judge(monkeypatch, template="rewardbench", system_role=system_role)
    question, chosen, rejected = "What is 2+2? " + NASTY, "4, because {2+2}.", "5 " + NASTY
    prompt = [user(question)]
    judge.score([CompareRequest("i", (1, 0), 0, prompt, (rejected, chosen))])
    # run_generative.py: text_chosen = [user, chosen]; shuffled (rejected shown as A)
    system, text = rb_format_judge_answers(question, prompt + [assistant(rejected)], prompt + [assistant(chosen)])
    if system_role == "system":
        assert gen.seen == [[{"role": "system", "content": system}, {"role": "user", "content": text}]]
    else:  # run_generative_v2.py --no_system_prompt
        assert gen.seen == [[{"role": "user", "content": f"{system}\n\n{text}"}]]


def test_pairwise_two_turn_prompt_is_reward_benchs(monkeypatch):
    judge, gen = make_judge(monkeypatch, template="rewardbench")
    prompt = [{"role": "system", "content": "ignored"}, user("First question " + NASTY), assistant("First answer {x}"),
              user("Follow-up?")]
    judge.score([CompareRequest("i", (0, 1), 0, prompt, ("chosen reply", "rejected reply"))])
    turns = prompt[1:]
    text_chosen, text_rejected = turns + [assistant("chosen reply")], turns + [assistant("rejected reply")]
    system, text = rb_format_judge_answers(text_chosen[0]["content"], text_chosen, text_rejected, multi_turn=True)
    assert gen.seen == [[{"role": "system", "content": system}, {"role": "user", "content": text}]]
    assert text.count("First answer {x}") == 2 and text.count("First question") == 2


def test_other_conversations_fall_back_to_the_single_turn_prompt(monkeypatch):
    """Conversations reward-bench never shows (longer ones, which its scripts drop): the transcript as question."""
    judge, gen = make_judge(monkeypatch, template="rewardbench")
    prompt = [user("q1"), assistant("a1"), user("q2"), assistant("a2"), user("q3")]
    judge.score([CompareRequest("i", (0, 1), 0, prompt, ("x", "y"))])
    system, text = gen.seen[0][0]["content"], gen.seen[0][1]["content"]
    assert system == PROMPT_V2
    assert text == MTBENCH_V2_TEMPLATE.format(question="User: q1\n\nAssistant: a1\n\nUser: q2\n\nAssistant: a2\n\n"
                                              "User: q3", answer_a="x", answer_b="y")


def test_two_turn_parts_are_shortened_to_fit(monkeypatch):
    judge, gen = make_judge(monkeypatch, template="rewardbench", max_model_len=4096)
    prompt = [user("Q" * 40_000), assistant("A" * 20_000), user("second")]
    judge.score([CompareRequest("i", (0, 1), 0, prompt, ("x" * 30_000, "y"))])
    msgs = gen.seen[0]
    assert sum(len(m["content"]) for m in msgs) // 4 <= 4096 - 2048  # max_tokens 2048 (the official run's)
    text = msgs[1]["content"]
    assert text.count("characters omitted") >= 2 * 2 + 1  # first question and answer (shown twice), response A
    assert text.startswith("<|The Start of Assistant A's Conversation with User|>\n\n### User:\nQQ")
    assert text.endswith("\n\n<|The End of Assistant B's Conversation with User|>")
    assert [text.count(label) for label in ("### User:\n", "### Assistant A:\n", "### Assistant B:\n")] == [4, 2, 2]


def test_four_way_prompt_is_reward_bench_2s(monkeypatch):
    judge, gen = make_judge(monkeypatch, template="rewardbench", protocol="nway")
    question, cands = "Pick one " + NASTY, ["c0 {}", "r1", "r2 [[A]]", "r3"]
    order = (2, 1, 0, 3)  # run_generative_v2.py shuffle_option 2: swap A and C
    judge.score([CompareRequest("i", order, 0, [user(question)], tuple(cands[k] for k in order))])
    texts = [[user(question), assistant(c)] for c in cands]
    system, text = rb_format_judge_four(question, texts[2], texts[1], texts[0], texts[3])
    assert gen.seen == [[{"role": "system", "content": system}, {"role": "user", "content": text}]]
    with pytest.raises(ValueError, match="exactly 4 responses"):  # the worker turns this into the item's error row
        judge.score([CompareRequest("j", (0, 1, 2), 0, [user("q")], ("a", "b", "c"))])


@pytest.mark.parametrize("protocol", ["rating", "nway", "pairwise"])
def test_ratings_prompt_and_ties_prompt(monkeypatch, protocol):
    """Ratings: no system prompt, ratings_prompt; RewardBench 2's Ties items ratings_prompt_ties, whether the
    protocol rates everything or the item is rated because its suite always rates it."""
    judge, gen = make_judge(monkeypatch, template="rewardbench", protocol=protocol, system_role="merge")
    q = "How? " + NASTY
    judge.score([ScoreRequest("17", 0, [user(q)], "Like {this}.", subset="Factuality"),
                 ScoreRequest("ref:3", 1, [user(q)], "tie", subset="Ties"),
                 ScoreRequest("tied:12", 0, [user(q)], "also", subset="Ties")])
    assert gen.seen == [
        [{"role": "user", "content": RATINGS_PROMPT.format(prompt=q, completion="Like {this}.")}],
        [{"role": "user", "content": RATINGS_PROMPT_TIES.format(prompt=q, completion="tie")}],
        [{"role": "user", "content": RATINGS_PROMPT_TIES.format(prompt=q, completion="also")}],
    ]


def test_the_ties_prompt_is_part_of_the_cache_key():
    config = JudgeConfig(path="m", template="rewardbench", protocol="nway")
    a, b = ScoreRequest("ref:3", 0, [user("q")], "r", subset="Ties"), ScoreRequest("3", 0, [user("q")], "r")
    assert Judge.cache_key(config, a) != Judge.cache_key(config, b)
    assert Judge.cache_key(config, b) == Judge.cache_key(config, ScoreRequest("9", 2, [user("q")], "r"))
    plain = JudgeConfig(path="m", protocol="nway")  # rmorch's own templates have one rating prompt
    assert Judge.cache_key(plain, a) == Judge.cache_key(plain, b)


def test_builtin_templates_render_in_one_pass():
    """Inserted text is never read as template syntax: the official prompt with {{...}} inside a response."""
    t = BUILTIN["rewardbench"]["pairwise"]
    assert t.source == "builtin:rewardbench" and load_template("pairwise", "rewardbench", "j") is t
    values = {"question": "{{response_b}}", "response_a": "{{question}}", "response_b": "b"}
    from rmorch.actors.judge_prompts import messages

    text = messages(t, values, "system")[1]["content"]
    assert text == MTBENCH_V2_TEMPLATE.format(question="{{response_b}}", answer_a="{{question}}", answer_b="b")


# ---- verdicts ---------------------------------------------------------------------------------------------------

CHOICES = [
    ("Assistant A is verbose... [[A]] ... no wait, [[B]]", 2, 0),  # "[[A]]" anywhere wins: the official A bias
    ("[[B]] [[A]]", 2, 0),
    ("[[B]]", 2, 1),
    ("My verdict: [[B]]. (Not [[C]].)", 2, 1),
    ("no mark", 2, None),
    ("[[C]]", 2, None),  # not a pairwise label
    ("[[ A ]]", 2, None),  # the exact token only
    ("[[a]]", 2, None),
    ("", 2, None),
    ("[[D]]", 4, 3),
    ("[[C]] first, then [[B]]", 4, 1),  # label order, not position in the text
    ("[[E]]", 4, None),
]


@pytest.mark.parametrize(("text", "n", "expected"), CHOICES)
def test_official_verdict_rule(text, n, expected):
    assert parse_choice(text, n, "rewardbench") == expected
    official = (rb_process_judgement if n == 2 else rb_process_judgement_four)(text)
    assert expected == (None if official == "error" else "ABCD".index(official))


def test_the_official_parser_reads_an_echoed_system_prompt_as_a():
    """Nothing echoed is cut out: reward-bench reads its own echoed instruction as A, and so does this parser. The
    strict parser reads no verdict there."""
    t = BUILTIN["rewardbench"]["pairwise"]
    assert parse_choice(t.system, 2, "rewardbench") == 0
    assert parse_choice(t.system, 2, "strict") is None


RATINGS = [
    ("The response is clear and correct.\n\n9", 9.0),
    ("10", 10.0),
    ("  7  \n", 7.0),
    ("Rating: 7.", None),  # the integer must end the stripped text
    ("It deserves an 8/10", 10.0),  # the trailing integer of "8/10" is 10, as there
    ("Rating: [[7]]", None),
    ("0", None),
    ("11", None),
    ("6.5", 5.0),  # "\b5" ends the text
    ("no rating", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), RATINGS)
def test_official_rating_rule(text, expected):
    assert parse_rating(text, "rewardbench") == expected
    assert rb_rating(text) == (-1 if expected is None else int(expected))


def test_outcomes_through_the_judge(monkeypatch):
    replies = {"q1": "[[A]] is tempting... [[B]]", "q2": "[[B]]", "q3": "I cannot decide.", "q4": "Reasons.\n\n8"}
    reply = lambda msgs: next(v for k, v in replies.items() if f"\n{k}\n" in msgs[-1]["content"])
    judge, _ = make_judge(monkeypatch, reply, template="rewardbench")
    out = judge.score([CompareRequest(q, (0, 1), 0, [user(q)], ("a", "b")) for q in ("q1", "q2", "q3")]
                      + [ScoreRequest("q4", 0, [user("q4")], "r")])
    assert [(o.choice, o.parsed) for o in out[:3]] == [(0, True), (1, True), (None, False)]
    assert (out[3].score, out[3].parsed) == (8.0, True)
    strict, _ = make_judge(monkeypatch, reply, template="rewardbench", parser="strict")
    assert strict.score([CompareRequest("q1", (0, 1), 0, [user("q1")], ("a", "b"))])[0].choice is None


# ---- end to end: items -> requests -> judge -> result rows -> official credit ----------------------------------


def _run(monkeypatch, items: pa.Table, reply, presentation: Presentation, rated: tuple[str, ...] = (),
         **config) -> pa.Table:
    judge, _ = make_judge(monkeypatch, reply, template="rewardbench", protocol=presentation.protocol, **config)
    assert judge.presentation(judge.config) == presentation  # the official run's single seeded order
    suite = items.column("suite")[0].as_py()
    task = ShardTask("u", "judge", suite, 0, items.num_rows, rated_subsets=rated, seed=0)
    reqs = shard_requests(items, presentation, task)
    return result_rows(task, items, reqs, judge.score(reqs), judge.settings(), "h")


PAIR_REPLIES = {
    "Q1": "A is better. [[A]]", "Q2": "[[B]]", "Q3": "Both [[A]] and [[B]] have merit; [[B]]", "Q4": "no verdict",
    "Q5": "[[C]]", "Q6": "Final: [[B]]", "Q7": "[[A]]", "Q8": "[[A]]",
}


def _pair_reply(msgs: list[dict[str, str]]) -> str:
    return PAIR_REPLIES[re.search(r"\b(Q\d+):", msgs[-1]["content"]).group(1)]


def test_rewardbench_v1_pairwise_credit_is_the_official_one(monkeypatch):
    rows = []
    for n in range(1, 9):
        prompt = [user(f"Q{n}: question {n}?")]
        if n in (3, 6):  # two-turn items, as in the prior preference sets
            prompt = [user(f"Q{n}: first?"), assistant("first answer"), user("and then?")]
        rows.append({"suite": "rewardbench", "subset": "s", "item_id": str(n), "prompt": prompt,
                     "candidates": [f"chosen {n}", f"rejected {n}"], "correct": [0]})
    items = items_table(rows)
    results = _run(monkeypatch, items, _pair_reply, Presentation("pairwise", "single"))
    credits, bad = official_credits(items, results, lambda s: math.nan)
    expected = []
    for row, res in zip(rows, results.to_pylist()):
        shuffled = tuple(res["order"]) == (1, 0)
        chosen, rejected = (row["prompt"] + [assistant(c)] for c in row["candidates"])
        a, b = (rejected, chosen) if shuffled else (chosen, rejected)
        _, text = rb_format_judge_answers(row["prompt"][0]["content"], a, b, multi_turn=len(chosen) > 2)
        expected.append(rb_pair_credit(rb_process_judgement(_pair_reply([{}, {"content": text}])), shuffled))
    assert credits == expected and not any(bad)
    assert {tuple(o) for o in results.column("order").to_pylist()} == {(0, 1), (1, 0)}  # both orders occur
    assert {0.0, 0.5, 1.0} <= set(credits)


RATING_REPLIES = ["Fine.\n\n9", "7", "Rating: 7.", "10", "meh, 8/10", "nothing", "[[6]]", "5  \n", "3"]


def _rating_reply(msgs: list[dict[str, str]]) -> str:
    return RATING_REPLIES[zlib.crc32(msgs[-1]["content"].encode()) % len(RATING_REPLIES)]


def _rb2_items() -> pa.Table:
    return get_suite_class("rewardbench2")().load(str(RB2_FIXTURE))


def test_rewardbench2_four_way_and_ties_are_the_official_ones(monkeypatch):
    items = _rb2_items()
    four = ["Surely [[C]].", "[[A]]", "[[B]]", "[[D]]", "[[C]] over [[B]]", "none", "[[E]]"]
    reply = lambda msgs: (four[zlib.crc32(msgs[-1]["content"].encode()) % len(four)]
                          if msgs[0]["role"] == "system" else _rating_reply(msgs))
    results = _run(monkeypatch, items, reply, Presentation("nway", "single"), rated=("Ties",))
    credits, bad = official_credits(items, results, lambda s: math.nan)
    scores, _ = rating_scores(items, results)
    by_item = {}
    for r in results.to_pylist():
        by_item.setdefault(r["item_id"], []).append(r)
    four_credits, ties_valid = set(), set()
    for k, item in enumerate(items.to_pylist()):
        q = item["prompt"][0]["content"]
        texts = [[user(q), assistant(c)] for c in item["candidates"]]
        if item["subset"] == "Ties":  # rated with ratings_prompt_ties; the raw ratings (-1 invalid) are the scores
            ratings = [rb_rating(_rating_reply([user(RATINGS_PROMPT_TIES.format(prompt=q, completion=c))]))
                       for c in item["candidates"]]
            assert scores[k] == [float(r) for r in ratings]
            ties_valid |= {r != -1 for r in ratings}
        else:
            (row,) = by_item[item["item_id"]]
            order = row["order"]
            _, text = rb_format_judge_four(q, *(texts[i] for i in order))
            winner = rb_process_judgement_four(reply([{"role": "system"}, {"content": text}]))
            assert credits[k] == rb_four_credit(winner, order.index(0))
            four_credits.add(credits[k])
    assert not any(bad) and four_credits == {0.0, 0.25, 1.0} and ties_valid == {True, False}


def test_rewardbench2_ratings_are_the_official_ones(monkeypatch):
    """`protocol: rating` (run_generative_v2.py --score_w_ratings): every completion rated alone."""
    items = _rb2_items()
    results = _run(monkeypatch, items, _rating_reply, Presentation("rating", "single"))
    credits, bad = official_credits(items, results, lambda s: math.nan, ratings=rating_credit)
    for k, item in enumerate(items.to_pylist()):
        prompt = RATINGS_PROMPT_TIES if item["subset"] == "Ties" else RATINGS_PROMPT
        q = item["prompt"][0]["content"]
        ratings = [rb_rating(_rating_reply([user(prompt.format(prompt=q, completion=c))])) for c in item["candidates"]]
        if item["subset"] != "Ties":
            assert credits[k] == pytest.approx(rb_ratings_credit(ratings))
    assert not any(bad)


def test_rewardbench_v1_ratings_credit_is_the_official_one(monkeypatch):
    rows = [{"suite": "rewardbench", "subset": "s", "item_id": str(n), "prompt": [user(f"question {n}")],
             "candidates": [f"chosen answer {n}", f"rejected answer {n}"], "correct": [0]} for n in range(12)]
    items = items_table(rows)
    results = _run(monkeypatch, items, _rating_reply, Presentation("rating", "single"))
    credits, _ = official_credits(items, results, lambda s: math.nan, ratings=pairwise_rating_credit)
    expected = []
    for row in rows:
        q = row["prompt"][0]["content"]
        a, b = (rb_rating(_rating_reply([user(RATINGS_PROMPT.format(prompt=q, completion=c))]))
                for c in row["candidates"])
        expected.append(rb_v1_ratings_credit(a, b))
    assert credits == expected and {0.0, 0.5, 1.0} <= set(credits)


# ---- configuration ------------------------------------------------------------------------------------------------


def test_config_defaults_follow_the_official_run():
    c = JudgeConfig(path="m", template="rewardbench")
    assert (c.parser, c.permutations, c.max_tokens, c.temperature) == ("rewardbench", "single", 2048, 0.0)
    assert JudgeConfig(path="m", template="rewardbench", protocol="nway").permutations == "single"
    given = JudgeConfig(path="m", template="rewardbench", parser="strict", permutations="both", max_tokens=300)
    assert (given.parser, given.permutations, given.max_tokens) == ("strict", "both", 300)
    plain = JudgeConfig(path="m")  # rmorch's own defaults are unchanged
    assert (plain.parser, plain.permutations, plain.max_tokens) == ("strict", "both", 512)
    assert JudgeConfig(path="m", parser="rewardbench").permutations == "both"  # the parser alone changes no default


def test_parsers_and_the_config_literal_agree():
    hint = typing.get_type_hints(JudgeConfig)["parser"]
    (literal,) = [a for a in typing.get_args(hint) if typing.get_origin(a) is typing.Literal]
    assert typing.get_args(literal) == PARSERS


def test_template_and_parser_are_in_the_settings_identity():
    def settings_hash(**config):
        return ModelSpec("j", "judge", JudgeConfig(path="m", **config)).settings_hash

    official = ModelSpec("j", "judge", JudgeConfig(path="m", template="rewardbench")).settings()
    assert official["template"] == "rewardbench" and official["parser"] == "rewardbench"
    hashes = {settings_hash(), settings_hash(template="rewardbench"),
              settings_hash(template="rewardbench", parser="strict"), settings_hash(parser="rewardbench")}
    assert len(hashes) == 4
    # an unset parser resolves to the value it had before it could be unset: older stores keep their hash
    assert settings_hash() == settings_hash(parser="strict", permutations="both", max_tokens=512)


def test_unknown_template_names_are_refused_clearly(tmp_path, monkeypatch):
    with pytest.raises(SpecError, match=r"'rewardbnech' is neither a built-in template \(rewardbench, arena_hard\) nor a file"):
        JudgeConfig(path="m", template="rewardbnech")
    with pytest.raises(UserError, match=r"template 'rewardbnech' is neither a built-in template \(rewardbench, arena_hard\)"):
        load_template("pairwise", "rewardbnech", "j")
    path = tmp_path / "mine.yaml"  # a file still works
    path.write_text("user: 'Q: {{question}} A: {{response_a}} B: {{response_b}}'\n")
    assert load_template("pairwise", str(JudgeConfig(path="m", template=str(path)).template), "j").source == \
        "file:mine.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bare").write_text("user: '{{question}} {{response}}'\n")  # a bare name that is a file
    assert load_template("rating", JudgeConfig(path="m", template="bare").template or "", "j").source == "file:bare"
    with pytest.raises(UserError, match="cannot read"):  # a path that does not exist: the file error, as before
        load_template("rating", "missing.yaml", "j")


def test_builtin_templates_cover_their_protocols():
    for name, templates in BUILTIN.items():
        # arena_hard (JudgeBench's arena-hard prompt) is pairwise only: tests/unit/test_judgebench.py
        assert set(templates) == ({"pairwise"} if name == "arena_hard" else {"pairwise", "nway", "rating"}), name
        for t in templates.values():
            assert dataclasses.is_dataclass(t) and t.source == f"builtin:{name}"
