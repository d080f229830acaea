"""The GSM8K answer check: the final number of a solution, compared numerically with the reference answer.

Used to label sampled solutions (`rmorch generate`) and to check the labels shipped with the GSM8K model solutions.
The final number of a text is, in this order of precedence (the last occurrence of each marker wins):

    "#### N"              the GSM8K reference format (test.jsonl `answer`)
    "A: N"                at the start of a line: the format of the GSM8K paper's model solutions
    "the answer is N"     the usual chain-of-thought ending (case-insensitive, optional ":" / "$")
    else the last number anywhere in the text.

After a marker, the first number that follows it on the same line is taken (nothing there: the marker is skipped).
A number is digits with optional thousands commas, a decimal part and a sign, with "$" allowed before it
("-$1,250.50"); commas and "$" are removed and a sentence-final "." never belongs to it. Two answers match when
both parse and are equal within 1e-6 (relative; so "18", "18.00" and "$18" all match 18).
"""

from __future__ import annotations

import math
import re

NUMBER = re.compile(r"[-+]?\$?\d(?:[\d,]*\d)?(?:\.\d+)?")
# Each marker captures the rest of its line; the first number there is the answer.
MARKERS = (
    re.compile(r"####([^\n]*)"),
    re.compile(r"(?:^|\n)[ \t]*A:([^\n]*)"),
    re.compile(r"answer is[ \t]*:?([^\n]*)", re.IGNORECASE),
)


def parse_number(text: str) -> float | None:
    """The value of one NUMBER match ("$1,250.50" -> 1250.5), or None if it is not a number."""
    cleaned = text.replace(",", "").replace("$", "")
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def extract_answer(text: str) -> str | None:
    """The final answer of a solution as a plain number string ("1250.5", "-3"), or None if it has no number."""
    for marker in MARKERS:
        for tail in reversed(marker.findall(text)):
            m = NUMBER.search(tail)
            if m:
                return _plain(m.group())
    numbers = NUMBER.findall(text)
    return _plain(numbers[-1]) if numbers else None


def _plain(number: str) -> str:
    return number.replace(",", "").replace("$", "").lstrip("+")


def answers_match(answer: str | None, reference: str | None) -> bool:
    """Whether two extracted answers are the same number (within 1e-6 relative); False if either is missing."""
    if answer is None or reference is None:
        return False
    a, b = parse_number(answer), parse_number(reference)
    if a is None or b is None:
        return False
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def is_correct(solution: str, reference_solution: str) -> bool:
    """Whether a solution's final number equals the reference's (the reference may be a worked solution ending in
    "#### N" or "A: N", or just the number)."""
    return answers_match(extract_answer(solution), extract_answer(reference_solution))
