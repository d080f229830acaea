"""Shared settings and strategies of the fuzz tests (tests/test_fuzz_*.py). Not a test file.

Every fuzz test is derandomized (the same examples on every run, so CI is reproducible) and keeps no example
database. RMORCH_FUZZ_SCALE=10 multiplies every example budget, for a longer local hunt.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("RMORCH_FUZZ_SCALE", "1"))


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max(1, int(max_examples * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
    )


# Text that tries to be read as something other than text: template placeholders of every syntax we or Jinja know,
# the judge's own verdict markers and section labels, chat special tokens, regex-replacement escapes, control and
# odd unicode characters.
HOSTILE_FRAGMENTS = [
    "{question}", "{response_a}", "{{question}}", "{{ response_b }}", "{{response}}", "{{responses}}",
    "{{verdicts}}", "{{ 7*7 }}", "{% for m in messages %}x{% endfor %}", "{% raw %}", "{# c #}", "{{", "}}", "{%",
    "%}", "${HOME}", "%s", "%(x)s", "{0}", "\\1", "\\g<0>", "\\n", "[[A]]", "[[B]]", "[[Z]]", "[[10]]",
    "Rating: [[7]]", "Answer A:\n", "Answer B:", "Question:\n", "[Document 1]", "[Image 1: x.png]",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "\x00", "\x01", "\x1b[31m", "\r", "\r\n", "\t",
    "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\ufeff", "\u200b", "\u202e", "\U0001f600", "K", "ſ", "İ",
    "ﬀ", "\ud7ff", "\ue000", "\uffff", "\U0010ffff",
]

hostile_fragment = st.sampled_from(HOSTILE_FRAGMENTS)

# Any text (st.text never yields lone surrogates: those only exist behind JSON \u escapes, see test_fuzz_loaders),
# mixed with hostile fragments, sometimes repeated into a long text.
hostile_text = st.one_of(
    st.text(),
    st.lists(st.one_of(hostile_fragment, st.text(max_size=8)), max_size=12).map("".join),
    st.tuples(hostile_fragment, st.integers(1, 20_000)).map(lambda t: t[0] * t[1]),
)

non_blank_hostile_text = hostile_text.map(lambda s: s + " x" if not s.strip() else s)

# JSON-like values of every type, nested a little.
json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), hostile_fragment,
)
json_value: st.SearchStrategy[Any] = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)

# A value that is not a non-blank string: what a "string field" must refuse.
not_a_string = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just(""), st.sampled_from([" ", "\n\t", "\u3000"]),
    st.lists(st.text(max_size=5), max_size=3), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
