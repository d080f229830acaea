"""Judge prompt templates, their safe rendering, and verdict / rating parsing. Pure functions, no model.

A template is a system text and a user text with `{{placeholders}}`:
    question          the conversation to judge: the user message, or a User:/Assistant: transcript for several
                      turns, after any context documents
    response_a ...    pairwise and nway: the responses in presented order, one placeholder per label
    responses         nway: all responses as labelled blocks
    verdicts          nway: the verdict tokens the judge may answer with ("[[A]], [[B]], [[C]] or [[D]]")
    response          rating: the one response to rate
    first_question, first_answer, second_question
                      the built-in two-turn pairwise prompt (`template: rewardbench`) only: a conversation of user,
                      assistant, user shown apart (then `question` is not used)
Rendering is one pass of substitution: text inserted from an item is never read as template syntax again, so
braces, `{{...}}` or Jinja in a response are shown as they are.

Users give their own template as a YAML file `{system: ..., user: ...}` (system may be empty); it is checked when
the judge loads: unknown placeholders and missing required ones are errors. `template: NAME` picks a built-in
template instead (`BUILTIN`): `rewardbench`, allenai/reward-bench's own generative-judge prompts (see "RewardBench's
official prompts" below), with per-item variants: its two-turn pairwise prompt for a conversation of user,
assistant, user, and its Ties rating prompt for RewardBench 2's Ties items; `arena_hard`, JudgeBench's arena-hard
judge prompt (pairwise only; see "JudgeBench's arena-hard prompt" below). A built-in template replaces the prompts of
the protocols it has; the others keep the defaults.

Verdicts and ratings (see "parsing" below): `parser: strict` (the default) reads the protocol's explicit marks alone,
`[[X]]` or `[[N]]`, and only exactly one distinct mark, after cutting out whatever the judge may echo of its prompt;
`parser: lenient` also reads verdict phrases and rating forms where the output holds no mark; `parser: rewardbench`
is the official RewardBench rule (the first of "[[A]]", "[[B]]", ... found anywhere; a trailing integer 1-10), the
default of `template: rewardbench` only; `parser: arena_hard` reads arena-hard's five marks as JudgeBench does
([[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]; a tie is a verdict read that names no winner), the default of
`template: arena_hard` only. Anything else is unparsed: the raw output is kept and `parsed` is False.

Images (vision-language judges): an item's context may hold image parts ({"kind": "image", "content": PATH}). A
text-only judge sees them as "[Image k: PATH]" lines. A judge that is shown the images gets them as `ImageInput`s
(`read_image`: the file's bytes, checked to decode) beside the text, and the question text leaves them out; the
backend puts the images at the start of the first user turn (as vLLM's chat path and LLaVA-style prompts do).
"""

from __future__ import annotations

import io
import os
import re
import string
from dataclasses import dataclass, field

from rmorch.actors.judge_official_prompts import (
    AH_SYSTEM,
    AH_USER,
    RB_FOUR_SYSTEM,
    RB_FOUR_USER,
    RB_MULTI_SYSTEM,
    RB_MULTI_USER,
    RB_PAIR_SYSTEM,
    RB_PAIR_USER,
    RB_RATINGS,
    RB_RATINGS_TIES,
)
from rmorch.core.errors import UserError, read_yaml

LABELS = string.ascii_uppercase
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

# Short and direct: small judges follow these far more often than long rubric prompts (SmolLM2-135M parsed 20-24
# of 40 RewardBench pairs with this form, 0-1 of 40 with an MT-Bench-style prompt); large judges do well with both.
_SYSTEM = (
    "You are a fair judge of AI assistant answers. Judge helpfulness, correctness, harmlessness and how well each "
    "answer follows the question. The order of the answers and their length must not matter."
)

PAIRWISE = {
    "system": _SYSTEM,
    "user": (
        "Question:\n{{question}}\n\nAnswer A:\n{{response_a}}\n\nAnswer B:\n{{response_b}}\n\n"
        "Which answer is better? Reply with [[A]] or [[B]] only."
    ),
}

NWAY = {
    "system": _SYSTEM,
    "user": "Question:\n{{question}}\n\n{{responses}}\n\nWhich answer is best? Reply with {{verdicts}} only.",
}

RATING = {
    "system": _SYSTEM,
    "user": (
        "Question:\n{{question}}\n\nAnswer:\n{{response}}\n\n"
        "Rate the answer from 1 (worst) to 10 (best). Reply with Rating: [[N]] only, for example Rating: [[7]]."
    ),
}

DEFAULTS = {"pairwise": PAIRWISE, "nway": NWAY, "rating": RATING}
ALLOWED = {
    "pairwise": {"question", "response_a", "response_b"},
    "nway": {"question", "responses", "verdicts"} | {f"response_{c}" for c in LABELS.lower()},
    "rating": {"question", "response"},
}
REQUIRED = {
    "pairwise": {"question", "response_a", "response_b"},
    "nway": {"question"},  # plus `responses` or every response_x: checked per request
    "rating": {"question", "response"},
}


@dataclass(frozen=True)
class Template:
    system: str
    user: str
    source: str  # "default", "file:NAME" or "builtin:NAME"
    # built-in templates only (`for_request` picks the variant of a request):
    n_responses: int | None = None  # comparisons: the number of responses the template shows (None: any)
    two_turn: Template | None = None  # the variant for a conversation of user, assistant, user
    ties: Template | None = None  # ratings: the variant for RewardBench 2's Ties items

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.system)) | set(_PLACEHOLDER.findall(self.user))

    def for_request(self, prompt: list[dict[str, str]], subset: str | None, n_responses: int) -> Template:
        """The variant that renders this request: the two-turn one for a conversation of user, assistant, user,
        the Ties one for an item of RewardBench 2's Ties subset (TIES_SUBSET), else this template. ValueError where
        the template shows a fixed number of responses and the request has another."""
        if self.n_responses is not None and n_responses != self.n_responses:
            raise ValueError(f"template {self.source} shows exactly {self.n_responses} responses (the official "
                             f"prompt's), this request has {n_responses}")
        if self.two_turn is not None and two_turn_split(prompt) is not None:
            return self.two_turn
        if self.ties is not None and subset == TIES_SUBSET:
            return self.ties
        return self


def check_template_name(name: str, protocol: str | None = None) -> None:
    """ValueError for a bare name (no folder, no extension) that is neither a built-in template nor a file, and for
    a built-in template that has no prompt of the judge's `protocol` (arena_hard is pairwise only)."""
    if name in BUILTIN:
        if protocol is not None and protocol not in BUILTIN[name]:
            raise ValueError(f"the built-in template {name} has no {protocol} prompt (it has: "
                             f"{', '.join(BUILTIN[name])}): use `protocol: {next(iter(BUILTIN[name]))}`")
        return
    if os.path.exists(name) or any(c in name for c in "/\\."):
        return
    raise ValueError(f"{name!r:.80} is neither a built-in template ({', '.join(BUILTIN)}) nor a file (a template "
                     f"file is a YAML path such as my-template.yaml)")


def load_template(protocol: str, path: str | None, model: str) -> Template:
    """The protocol's default template, a built-in one by name (`BUILTIN`; the default where the built-in has no
    prompt of this protocol), or the user's YAML file, checked against the protocol's placeholders."""
    if path in BUILTIN and protocol in BUILTIN[path]:
        return BUILTIN[path][protocol]
    if path is None or path in BUILTIN:
        d = DEFAULTS[protocol]
        return Template(d["system"], d["user"], "default")
    try:
        check_template_name(path)
    except ValueError as e:
        raise UserError(f"model '{model}': template {e}") from None
    data = read_yaml(path, f"model '{model}': template {path}")
    if not isinstance(data, dict) or not isinstance(data.get("user"), str) or set(data) - {"system", "user"}:
        raise UserError(f"model '{model}': template {path} must be a mapping with a `user` text and an optional "
                        f"`system` text")
    system = data.get("system") or ""
    if not isinstance(system, str):
        raise UserError(f"model '{model}': template {path}: `system` must be a text")
    t = Template(system, data["user"], f"file:{path.rsplit('/', 1)[-1]}")
    found = t.placeholders()
    unknown = found - ALLOWED[protocol]
    if unknown:
        raise UserError(f"model '{model}': template {path}: unknown placeholders {sorted(unknown)} for protocol "
                        f"{protocol} (allowed: {sorted(ALLOWED[protocol])})")
    missing = REQUIRED[protocol] - found
    if protocol == "nway" and "responses" not in found and not any(p.startswith("response_") for p in found):
        missing.add("responses")
    if missing:
        raise UserError(f"model '{model}': template {path}: missing placeholders {sorted(missing)}")
    return t


def fill(text: str, values: dict[str, str]) -> str:
    """Substitute `{{name}}` in one pass; inserted values are never re-scanned. Unknown names stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# ---- RewardBench's official prompts (`template: rewardbench`) --------------------------------------------------
#
# The texts are reward-bench's own, verbatim, in rmorch.actors.judge_official_prompts (source and licence there).
# They keep their own `{name}` fields; `_official` turns each field into our `{{placeholder}}`, so rendering stays
# one-pass safe (`fill`). How reward-bench fills them (format_judge_answers, get_single_rating):
#   pairwise   system prompt_v2; user MTBENCH_V2 with question = the user turn, answer_a / answer_b = the responses
#              in presented order. A conversation of user, assistant, user (text_chosen has 4 messages) gets
#              prompt_multi_v2 and MTBENCH_MULTI_V2: question_1 = the first user turn, answer_a_1 = answer_b_1 = the
#              shared first assistant turn, question_2 = the second user turn, answer_a_2 / answer_b_2 = responses.
#   nway       (RewardBench 2, run_judge_four) the four-way system prompt and user text, exactly 4 responses.
#   rating     no system prompt; user ratings_prompt with prompt = the user turn, completion = the response;
#              RewardBench 2's Ties items get ratings_prompt_ties.
# What the official scripts never show is rendered as the default templates render it (`render_question`): any
# context documents before the (first) question; a conversation of another shape (their scripts drop longer ones,
# and rate single-turn items only) as a User:/Assistant: transcript in `question`.

# reward-bench's format fields -> our placeholders (answer_a_1 and answer_b_1 are the same shared first answer;
# placeholder names hold no digits)
_RB_FIELDS = {
    "question": "question", "prompt": "question", "completion": "response",
    "answer_a": "response_a", "answer_b": "response_b", "answer_c": "response_c", "answer_d": "response_d",
    "question_1": "first_question", "answer_a_1": "first_answer", "answer_b_1": "first_answer",
    "question_2": "second_question",
    "answer_a_2": "response_a", "answer_b_2": "response_b",
}
# the conversation's parts a two-turn template shows apart (`question_parts`)
TURN_PLACEHOLDERS = ("first_question", "first_answer", "second_question")


def _official(text: str) -> str:
    """A reward-bench format string with its `{field}`s as our `{{placeholder}}`s (every brace must be a field)."""
    out = re.sub(r"\{([a-z_0-9]+)\}", lambda m: "{{" + _RB_FIELDS[m.group(1)] + "}}", text)
    rest = _PLACEHOLDER.sub("", out)
    if "{" in rest or "}" in rest:
        raise AssertionError("a reward-bench prompt holds a brace that is no field")
    return out


def _rewardbench() -> dict[str, Template]:
    src = "builtin:rewardbench"
    pair_two_turn = Template(RB_MULTI_SYSTEM, _official(RB_MULTI_USER), src, n_responses=2)
    ties = Template("", _official(RB_RATINGS_TIES), src)
    return {
        "pairwise": Template(RB_PAIR_SYSTEM, _official(RB_PAIR_USER), src, n_responses=2, two_turn=pair_two_turn),
        "nway": Template(RB_FOUR_SYSTEM, _official(RB_FOUR_USER), src, n_responses=4),
        "rating": Template("", _official(RB_RATINGS), src, ties=ties),
    }


# ---- JudgeBench's arena-hard prompt (`template: arena_hard`) ---------------------------------------------------
#
# The texts are JudgeBench's own, verbatim, in rmorch.actors.judge_official_prompts (source and licence there): a
# system message and a user message, as its ArenaHard judge sends them. Its Jinja fields become our placeholders.
_AH_FIELDS = {"prompt": "question", "answer_a": "response_a", "answer_b": "response_b"}


def _jinja(text: str) -> str:
    """A JudgeBench Jinja template with its `{{field}}`s as our `{{placeholder}}`s (every brace must be a field)."""
    out = re.sub(r"\{\{([a-z_]+)\}\}", lambda m: "{{" + _AH_FIELDS[m.group(1)] + "}}", text)
    if "{" in _PLACEHOLDER.sub("", out) or "}" in _PLACEHOLDER.sub("", out):
        raise AssertionError("a JudgeBench prompt holds a brace that is no field")
    return out


def _arena_hard() -> dict[str, Template]:
    return {"pairwise": Template(AH_SYSTEM, _jinja(AH_USER), "builtin:arena_hard", n_responses=2)}


BUILTIN: dict[str, dict[str, Template]] = {"rewardbench": _rewardbench(), "arena_hard": _arena_hard()}


def builtin_texts(name: str | None) -> tuple[str, ...]:
    """Every text of the built-in template `name` (each prompt and variant: system, then user), () for anything else:
    part of a judge's identity (rmorch.orchestrator.plan.provenance), so that editing a built-in prompt scores its
    judges again, as editing a template file does."""
    out: list[str] = []
    for protocol, template in sorted(BUILTIN.get(name or "", {}).items()):
        for variant in (template, template.two_turn, template.ties):
            if variant is not None:
                out += [protocol, variant.system, variant.user]
    return tuple(out)


TIES_SUBSET = "Ties"  # RewardBench 2's subset whose items are rated with the Ties variant of a built-in template


def uses_ties_variant(template: str | None, subset: str | None) -> bool:
    """Whether a rating request of an item of this subset is rendered with the Ties variant of the named built-in
    template."""
    rating = BUILTIN.get(template or "", {}).get("rating")
    return rating is not None and rating.ties is not None and subset == TIES_SUBSET


def two_turn_split(prompt: list[dict[str, str]]) -> tuple[str, str, str] | None:
    """(first user turn, assistant turn, second user turn) of a conversation that is exactly these three turns
    (system messages aside), the shape of reward-bench's two-turn items; None for any other conversation."""
    turns = [m for m in prompt if m["role"] != "system"]
    if [m["role"] for m in turns] != ["user", "assistant", "user"]:
        return None
    return turns[0]["content"], turns[1]["content"], turns[2]["content"]


def question_parts(template: Template, prompt: list[dict[str, str]], context: list[dict[str, str]] | None,
                   images_shown: bool = False) -> dict[str, str]:
    """The texts of the conversation being judged, by placeholder: `question` (`render_question`), or for a
    template that shows the turns apart (the two-turn official prompt) first_question (any documents first),
    first_answer and second_question."""
    split = two_turn_split(prompt) if template.placeholders() & set(TURN_PLACEHOLDERS) else None
    if split is None:
        return {"question": render_question(prompt, context, images_shown)}
    first, answer, second = split
    return {"first_question": render_question([{"role": "user", "content": first}], context, images_shown),
            "first_answer": answer, "second_question": second}


@dataclass(frozen=True)
class ImageInput:
    """One image shown to a vision-language judge: the file's bytes as read, and their MIME type."""

    path: str
    data: bytes = field(repr=False)
    mime: str  # "image/png", "image/jpeg", ...


def image_paths(context: list[dict[str, str]] | None) -> list[str]:
    """The image parts of an item's context, in order."""
    return [part["content"] for part in context or [] if part.get("kind") == "image"]


def read_image(path: str) -> ImageInput:
    """Read an image file and check that it decodes; ValueError with a short reason otherwise (a missing file, a
    relative path from a suite loaded without its images, a truncated or non-image file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"cannot read image '{path}': {e.strerror or e}") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decode fully: a truncated file fails here, not inside the engine
            fmt = im.format or "PNG"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode image '{path}': {e}") from None
    return ImageInput(path, data, Image.MIME.get(fmt, f"image/{fmt.lower()}"))


def render_question(prompt: list[dict[str, str]], context: list[dict[str, str]] | None,
                    images_shown: bool = False) -> str:
    """The conversation being judged as text: documents first, then the user turn (or a transcript).

    Image parts become "[Image k: PATH]" lines, or nothing when `images_shown` (the judge sees the images)."""
    parts = []
    for k, doc in enumerate(context or [], 1):
        if doc.get("kind") == "image":
            if not images_shown:
                parts.append(f"[Image {k}: {doc['content']}]")
        else:
            parts.append(f"[Document {k}]\n{doc['content']}")
    turns = [m for m in prompt if m["role"] != "system"]
    if len(turns) == 1 and turns[0]["role"] == "user":
        parts.append(turns[0]["content"])
    else:
        names = {"user": "User", "assistant": "Assistant"}
        parts.append("\n\n".join(f"{names.get(m['role'], m['role'])}: {m['content']}" for m in turns))
    return "\n\n".join(parts)


def comparison_values(question: str, responses: list[str]) -> dict[str, str]:
    labels = LABELS[: len(responses)]
    values = {"question": question}
    blocks = []
    for label, text in zip(labels, responses):
        values[f"response_{label.lower()}"] = text
        blocks.append(f"Answer {label}:\n{text}")
    values["responses"] = "\n\n".join(blocks)
    tokens = [f"[[{c}]]" for c in labels]
    values["verdicts"] = ", ".join(tokens[:-1]) + f" or {tokens[-1]}" if len(tokens) > 1 else tokens[0]
    return values


def messages(template: Template, values: dict[str, str], system_role: str) -> list[dict[str, str]]:
    """The chat messages of one request. system_role "merge" puts the system text at the top of the user turn
    (for models whose chat template rejects the system role)."""
    system, user = fill(template.system, values), fill(template.user, values)
    if not system:
        return [{"role": "user", "content": user}]
    if system_role == "merge":
        return [{"role": "user", "content": f"{system}\n\n{user}"}]
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def shorten(text: str, keep: int) -> str:
    """Keep the head and tail of a text (`keep` characters in all) around an omission marker."""
    if len(text) <= keep:
        return text
    head = max(keep * 2 // 3, 0)
    tail = max(keep - head, 0)
    return f"{text[:head]}\n[... {len(text) - head - tail} characters omitted ...]\n{text[len(text) - tail:] if tail else ''}"


# ---- parsing ---------------------------------------------------------------------------------------------------
#
# A verdict is read only where the judge gave one. The default parser (`parser: strict`) reads the protocol's
# explicit marks alone: [[A]], [[B]], ... for comparisons, [[N]] (N in 1-10) for ratings. An output holding two
# different marks (or a mark that is no label of the request) is ambiguous and gives no verdict, the rule of
# arena-hard and JudgeBench; the same mark twice is one verdict. Before anything is read, the parts of the prompt
# that hold a mark are cut out of the output (the template's instruction "Reply with [[A]] or [[B]] only.", a
# response that quotes "[[B]]"): a prompt echoed back never gives a verdict.
# `parser: lenient` also reads, in an output with no mark at all and with every word of the prompt cut out,
# verdict phrases ("Winner: B", "my final verdict is Assistant A") or a bare label on the last line; never a phrase
# that is one of the template's own answer labels ("Answer B"), and two different phrases are ambiguous too.
# `parser: rewardbench` is the official RewardBench rule (allenai/reward-bench process_judgement and the rating
# parse of get_single_rating), reproduced as it is, biases included, for numbers that must stand beside the
# leaderboard: a comparison's verdict is the first label, in label order, whose exact "[[X]]" appears anywhere in
# the output ("[[A]] ... [[B]]" is A: its A-first bias), else none; a rating is a trailing integer 1-10 of the
# stripped output (r"\b([1-9]|10)\b\s*$": "... 9" is 9, "Rating: 7." is none, "8/10" is 10), else none. Nothing
# echoed is cut out: an echo of the official system prompt ("[[A]]" if assistant A is better, ...) reads as A, as it
# does there. It is the default of `template: rewardbench` only, never of other templates.
# `parser: arena_hard` is JudgeBench's reading of arena-hard's verdicts (ScalerLab/JudgeBench utils/judges.py,
# ArenaHard.get_score, at e2c52c2): every exact `[[X]]` whose X is made of A, B, <, > and = (its regex
# r"\[\[([AB<>=]+)\]\]", case and spacing exact) is a mark; one distinct mark is the decision, with ">>" read as ">":
# [[A>>B]] and [[A>B]] name A, [[B>A]] and [[B>>A]] name B, [[A=B]] (or [[B=A]]) is a tie: a verdict read (`parsed`)
# that names no winner; any other mark ([[A<B]], [[AB]]) gives no decision, as there. Two distinct marks ([[A>B]] and
# [[A>>B]] too) are ambiguous: no verdict. Only pairwise. Beyond JudgeBench, as the strict parser, what the judge
# echoes of its prompt is cut out first (the system prompt's list of the five marks): an echo is never a verdict,
# where JudgeBench would find the listed marks ambiguous. Its default of `template: arena_hard` only.
#
# No two `\s*` may meet (an optional part between them being absent): a long run of whitespace would then be split
# between them in every possible way, and a 1 MB judge output of spaces would take hours. Each optional part
# carries its own trailing whitespace instead.
PARSERS = ("strict", "lenient", "rewardbench", "arena_hard")  # JudgeConfig.parser lists the same
_VERDICT = re.compile(r"\[\[\s*([A-Za-z])\s*\]\]")
_MARK = re.compile(r"\[\[([^\[\]\n]{1,24})\]\]")  # any [[...]]: a rating mark, or a mark that is no rating
_CUT = "\x00"  # what a cut-out echo leaves: no mark or phrase is formed across it
_VERDICT_PHRASE = re.compile(
    r"(?:final\s+verdict|verdict|winner|answer|better\s+response|best\s+response)\s*(?:(?:is|:)\s*)?(?:[:\-]\s*)?"
    r"(?:\*\*\s*)?(?:(?:assistant|response)\s*)?(?:\(\[?\s*|\[\s*)?(?-i:([A-Z]))\b",
    re.IGNORECASE,
)
_ARENA_HARD_MARK = re.compile(r"\[\[([AB<>=]+)\]\]")  # JudgeBench's pattern, exactly
ARENA_HARD_DECISIONS = {"A>B": 0, "B>A": 1}  # a decision (">>" read as ">") -> the position it names
ARENA_HARD_TIES = ("A=B", "B=A")
_LAST_LINE_LABEL = re.compile(r"^[\s\*\"'(\[]*(?:assistant\s+|response\s+)?(?-i:([A-Z]))[\s\*\"')\].]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Echo:
    """What a judge's prompt says, which its output must never be read as saying: the prompt's texts that hold a
    mark (`marked`, cut out by every parser), the template's words and every inserted text (`words`, cut out by the
    lenient parser too: "The winner is B" inside a response is no verdict) and the template's labels of the answers
    (`labels`: "Answer A", never read as a verdict phrase)."""

    marked: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


NO_ECHO = Echo()


def prompt_echo(template: Template, values: dict[str, str]) -> Echo:
    """The Echo of the prompt `messages(template, values, ...)` renders."""
    literal: list[str] = []
    labels: list[str] = []
    for text in (template.system, template.user):
        parts = _PLACEHOLDER.split(text)  # literal, name, literal, name, ..., literal
        literal += parts[0::2]
        for before, name in zip(parts[0::2], parts[1::2]):
            lines = [ln.strip() for ln in before.splitlines() if ln.strip()]
            if name.startswith("response_") and lines:
                labels.append(lines[-1].rstrip(":").strip())
            if name == "responses":  # comparison_values writes "Answer A:\n..." blocks
                labels += [f"Answer {c}" for c in LABELS if f"response_{c.lower()}" in values]
    pieces = literal + list(values.values())
    marked = {p for p in pieces if "[[" in p}
    marked |= {ln.strip() for p in marked for ln in p.splitlines() if "[[" in ln}  # a line echoed on its own
    words = {t.strip() for t in (*literal, *values.values()) if t.strip()}
    longest_first = lambda texts: tuple(sorted(texts, key=lambda t: (-len(t), t)))
    return Echo(longest_first(marked), longest_first(words), tuple(dict.fromkeys(lb for lb in labels if lb)))


def _cut(text: str, pieces: tuple[str, ...]) -> str:
    for piece in pieces:
        if piece:
            text = text.replace(piece, _CUT)
    return text


def parse_choice(text: str | None, n: int, parser: str = "strict", echo: Echo = NO_ECHO) -> int | None:
    """The position (0 = A) the judge picked among n responses, or None (no verdict, or an ambiguous one)."""
    if not text:
        return None
    if parser == "rewardbench":
        return next((k for k, label in enumerate(LABELS[:n]) if f"[[{label}]]" in text), None)
    if parser == "arena_hard":
        return ARENA_HARD_DECISIONS.get(arena_hard_decision(text, echo) or "") if n == 2 else None
    text = _cut(text, echo.marked)
    valid = LABELS[:n]
    marks = {m.upper() for m in _VERDICT.findall(text)}
    if marks:  # only the protocol's marks count, and only one of them
        (mark,) = marks if len(marks) == 1 else (None,)
        return valid.index(mark) if mark is not None and mark in valid else None
    if parser != "lenient":
        return None
    text = _cut(text, echo.words)
    own = {label.lower() for label in echo.labels}
    phrases = {m.group(1) for m in _VERDICT_PHRASE.finditer(text)
               if m.group(1) in valid and " ".join(m.group(0).rstrip(":").split()).lower() not in own}
    if phrases:
        return valid.index(phrases.pop()) if len(phrases) == 1 else None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines:
        m = _LAST_LINE_LABEL.match(lines[-1])
        if m and m.group(1) in valid:
            return valid.index(m.group(1))
    return None


def arena_hard_marks(text: str | None, echo: Echo = NO_ECHO) -> set[str]:
    """The distinct arena-hard marks in a judge's output (JudgeBench's pattern), after cutting out its prompt's echo."""
    return set(_ARENA_HARD_MARK.findall(_cut(text, echo.marked))) if text else set()


def arena_hard_decision(text: str | None, echo: Echo = NO_ECHO) -> str | None:
    """JudgeBench's decision from an arena-hard judgment: its one distinct mark with ">>" read as ">" ("A>B",
    "B>A", "A=B", or another mark's text), or None (no mark, or two different marks)."""
    marks = arena_hard_marks(text, echo)
    return marks.pop().replace(">>", ">") if len(marks) == 1 else None


def read_verdict(text: str | None, n: int, parser: str = "strict", echo: Echo = NO_ECHO) -> tuple[int | None, bool]:
    """(the position the judge picked or None, whether a verdict was read): a tie under `parser: arena_hard` is read
    and names no winner; under every other parser a verdict is read iff it names a position (`parse_choice`)."""
    choice = parse_choice(text, n, parser, echo)
    if parser == "arena_hard" and choice is None:
        return None, n == 2 and arena_hard_decision(text, echo) in ARENA_HARD_TIES
    return choice, choice is not None


_NUM = r"(10(?:\.0+)?|[1-9](?:\.[0-9]+)?)"
_RATING = re.compile(_NUM)
_NUMBER = re.compile(r"[0-9.]+")
_RATING_PATTERNS = (
    re.compile(r"rating\s*(?:(?:is|:)\s*)?(?:[:\-]\s*)?(?:\*+\s*)?" + _NUM + r"\b", re.IGNORECASE),
    re.compile(r"\b" + _NUM + r"\s*/\s*10\b"),
)
_TRAILING_INT = re.compile(r"\b([1-9]|10)\b\s*$")


def parse_rating(text: str | None, parser: str = "strict", echo: Echo = NO_ECHO) -> float | None:
    """A rating in [1, 10], or None (no rating, or an ambiguous one)."""
    if not text:
        return None
    if parser == "rewardbench":
        m = _TRAILING_INT.search(text.strip())
        return float(m.group(1)) if m else None
    text = _cut(text, echo.marked)
    marks = [m.strip() for m in _MARK.findall(text)]
    numbers = [m for m in marks if _NUMBER.fullmatch(m)]  # [[N]]: a rating mark, in range or not
    if numbers:  # only [[N]] with N in 1-10 counts, and only one value
        values = {float(m) for m in numbers if _RATING.fullmatch(m)}
        return values.pop() if len(values) == 1 and all(_RATING.fullmatch(m) for m in numbers) else None
    if parser != "lenient":
        return None
    text = _cut(text, echo.words)
    for pattern in _RATING_PATTERNS:
        found = {float(v) for v in pattern.findall(text)}
        if found:
            return found.pop() if len(found) == 1 else None
    m = _TRAILING_INT.search(text.strip().rstrip(".").strip())
    return float(m.group(1)) if m else None
