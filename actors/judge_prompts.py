"""Judge prompt templates, their safe rendering, and verdict / rating parsing. Pure functions, no model.

A template is a system text and a user text with `{{placeholders}}`:
    question          the conversation to judge: the user message, or a User:/Assistant: transcript for several
                      turns, after any context documents
    response_a ...    pairwise and nway: the responses in presented order, one placeholder per label
    responses         nway: all responses as labelled blocks
    verdicts          nway: the verdict tokens the judge may answer with ("[[A]], [[B]], [[C]] or [[D]]")
    response          rating: the one response to rate
Rendering is one pass of substitution: text inserted from an item is never read as template syntax again, so
braces, `{{...}}` or Jinja in a response are shown as they are.

Users give their own template as a YAML file `{system: ..., user: ...}` (system may be empty); it is checked when
the judge loads: unknown placeholders and missing required ones are errors.

Verdicts: the judge is asked to end with `[[X]]`. The LAST valid `[[X]]` in the output is the verdict (judges often
restate the options before concluding; the official RewardBench parser takes A whenever "[[A]]" appears anywhere,
a bias we do not copy). Without one, an explicit "verdict/winner/answer: X" or a final line that is only a label is
accepted. Ratings: the last `[[N]]` with 1 <= N <= 10, else "Rating: N", else "N/10", else a trailing integer 1-10
(the official rule). Anything else is unparsed: the raw output is kept and `parsed` is False.

Images (vision-language judges): an item's context may hold image parts ({"kind": "image", "content": PATH}). A
text-only judge sees them as "[Image k: PATH]" lines. A judge that is shown the images gets them as `ImageInput`s
(`read_image`: the file's bytes, checked to decode) beside the text, and the question text leaves them out; the
backend puts the images at the start of the first user turn (as vLLM's chat path and LLaVA-style prompts do).
"""

from __future__ import annotations

import io
import re
import string
from dataclasses import dataclass, field

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
    source: str  # "default" or "file:NAME"

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.system)) | set(_PLACEHOLDER.findall(self.user))


def load_template(protocol: str, path: str | None, model: str) -> Template:
    """The protocol's default template, or the user's YAML file, checked against the protocol's placeholders."""
    if path is None:
        d = DEFAULTS[protocol]
        return Template(d["system"], d["user"], "default")
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

# No two `\s*` may meet (an optional part between them being absent): a long run of whitespace would then be split
# between them in every possible way, and a 1 MB judge output of spaces would take hours. Each optional part
# carries its own trailing whitespace instead.
_VERDICT = re.compile(r"\[\[\s*([A-Za-z])\s*\]\]")
_VERDICT_PHRASE = re.compile(
    r"(?:final\s+verdict|verdict|winner|answer|better\s+response|best\s+response)\s*(?:(?:is|:)\s*)?(?:[:\-]\s*)?"
    r"(?:\*\*\s*)?(?:(?:assistant|response)\s*)?(?:\(\[?\s*|\[\s*)?(?-i:([A-Z]))\b",
    re.IGNORECASE,
)
_LAST_LINE_LABEL = re.compile(r"^[\s\*\"'(\[]*(?:assistant\s+|response\s+)?(?-i:([A-Z]))[\s\*\"')\].]*$", re.IGNORECASE)


def parse_choice(text: str | None, n: int) -> int | None:
    """The position (0 = A) the judge picked among n responses, or None."""
    if not text:
        return None
    valid = LABELS[:n]
    tokens = [m.upper() for m in _VERDICT.findall(text) if m.upper() in valid]
    if tokens:
        return valid.index(tokens[-1])
    phrases = [m for m in _VERDICT_PHRASE.findall(text) if m in valid]
    if phrases:
        return valid.index(phrases[-1])
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if lines:
        m = _LAST_LINE_LABEL.match(lines[-1])
        if m and m.group(1) in valid:
            return valid.index(m.group(1))
    return None


_NUM = r"(10(?:\.0+)?|[1-9](?:\.[0-9]+)?)"
_RATING_PATTERNS = (
    re.compile(r"\[\[\s*" + _NUM + r"\s*\]\]"),
    re.compile(r"rating\s*(?:(?:is|:)\s*)?(?:[:\-]\s*)?(?:\*+\s*)?" + _NUM + r"\b", re.IGNORECASE),
    re.compile(r"\b" + _NUM + r"\s*/\s*10\b"),
)
_TRAILING_INT = re.compile(r"\b([1-9]|10)\b\s*$")


def parse_rating(text: str | None) -> float | None:
    """A rating in [1, 10], or None."""
    if not text:
        return None
    for pattern in _RATING_PATTERNS:
        found = pattern.findall(text)
        if found:
            return float(found[-1])
    m = _TRAILING_INT.search(text.strip().rstrip(".").strip())
    return float(m.group(1)) if m else None
