"""The error cap (`max_error_rate`): count result rows and error rows as units are written, and say when, and why,
a sweep that mostly produces errors should stop instead of burning a night on a broken model (sweep-wide:
ErrorCapStop), or one model whose own rows mostly are errors should stop while the others go on (ModelErrorStop)."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# `max_error_rate` is checked only once this many result rows were written in the run (per model: of that model), so
# that one bad first shard does not stop a sweep or a model.
ERROR_CAP_MIN_ROWS = 200
ERROR_TEXT_CHARS = 300  # error texts are shown cut to this length
_DIGITS = re.compile(r"\d+")


@dataclass
class ErrorCapStop:
    """Why the scheduler stopped a sweep early: more than `max_error_rate` of the result rows written in this run
    (all models, all suites) were error rows. `models`: per model with error rows, most first: {model, rows,
    error_rows, top_error (the commonest error text), top_error_rows}."""

    max_error_rate: float
    rows: int
    error_rows: int
    models: list[dict[str, Any]]  # the commonest error: texts equal up to their digits (item ids, counts) count as one

    @property
    def rate(self) -> float:
        return self.error_rows / self.rows if self.rows else 0.0

    def message(self) -> str:
        """What the user reads: the cap, the rate, the worst models and their commonest error, how to go on."""
        lines = [(f"sweep stopped: {self.error_rows} of the {self.rows} result rows written in this run "
                  f"({self.rate:.1%}) are errors, above max_error_rate {self.max_error_rate:g} (checked from "
                  f"{ERROR_CAP_MIN_ROWS} rows on, over all models and suites).")]
        for i, m in enumerate(self.models[:3]):
            worst = "worst model" if i == 0 else "then"
            lines.append(f"  {worst} {m['model']}: {m['error_rows']} error rows of {m['rows']} "
                         f"({m['error_rows'] / m['rows']:.0%}); commonest error, in {m['top_error_rows']} rows (numbers "
                         f"aside): {m['top_error']}")
        suggestion = min(1.0, math.ceil((self.rate + 0.05) * 10) / 10)
        lines.append(f"Results written so far stay in the store; a rerun resumes from them. To let the sweep finish "
                     f"anyway, raise the cap (`max_error_rate: {suggestion:g}` in the spec, or "
                     f"`rmorch sweep --max-error-rate {suggestion:g}`; `null` / `none`: never stop).")
        return "\n".join(lines)


@dataclass
class ModelErrorStop:
    """Why the scheduler stopped one model: more than `max_error_rate` of its result rows written in this run (at
    least ERROR_CAP_MIN_ROWS of them) were error rows. `top_error`: its commonest error text (texts equal up to their
    digits count as one), in `top_error_rows` rows."""

    model: str
    max_error_rate: float
    rows: int
    error_rows: int
    top_error: str
    top_error_rows: int

    @property
    def rate(self) -> float:
        return self.error_rows / self.rows if self.rows else 0.0

    def message(self) -> str:
        """What the user reads: the model, its rate, the cap, its commonest error, what happened to the sweep."""
        return (f"model {self.model} stopped: {self.error_rows} of its {self.rows} result rows written in this run "
                f"({self.rate:.1%}) are errors, above max_error_rate {self.max_error_rate:g} (checked per model from "
                f"{ERROR_CAP_MIN_ROWS} rows on); commonest error, in {self.top_error_rows} rows (numbers aside): "
                f"{self.top_error}. Its remaining units were not run (a rerun resumes them); the other models went on.")


class ErrorTally:
    """Result rows and error rows written in this run, per model, with the error texts; decides the stop."""

    def __init__(self, max_error_rate: float | None):
        self.max_error_rate = max_error_rate
        self.rows: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.kinds: dict[str, Counter[str]] = {}  # model -> error text with its digits masked -> rows
        self.examples: dict[str, str] = {}  # masked text -> the first full text seen

    def add(self, model: str, table: pa.Table, n_errors: int) -> None:
        self.rows[model] += table.num_rows
        self.errors[model] += n_errors
        if n_errors and "error" in table.column_names:
            kinds = self.kinds.setdefault(model, Counter())
            for text in table.column("error").to_pylist():
                if text:
                    text = _short(text)
                    masked = _DIGITS.sub("#", text)
                    self.examples.setdefault(masked, text)
                    kinds[masked] += 1

    def over_cap(self) -> ErrorCapStop | None:
        """The stop, if the rows so far are enough and too many of them are errors; else None."""
        rows, errors = sum(self.rows.values()), sum(self.errors.values())
        if self.max_error_rate is None or rows < ERROR_CAP_MIN_ROWS or errors <= self.max_error_rate * rows:
            return None
        models = []
        for model, n in self.errors.most_common():
            if n == 0:
                break
            text, count = self._top_error(model)
            models.append({"model": model, "rows": self.rows[model], "error_rows": n, "top_error": text,
                           "top_error_rows": count})
        return ErrorCapStop(self.max_error_rate, rows, errors, models)

    def model_over_cap(self, model: str) -> ModelErrorStop | None:
        """The stop of `model` alone, if enough of its rows are in and too many of them are errors; else None."""
        rows, errors = self.rows[model], self.errors[model]
        if self.max_error_rate is None or rows < ERROR_CAP_MIN_ROWS or errors <= self.max_error_rate * rows:
            return None
        text, count = self._top_error(model)
        return ModelErrorStop(model, self.max_error_rate, rows, errors, text, count)

    def _top_error(self, model: str) -> tuple[str, int]:
        """`model`'s commonest error text (its first full text) and its rows."""
        top = self.kinds.get(model, Counter()).most_common(1)
        return (self.examples[top[0][0]], top[0][1]) if top else ("(no error text)", 0)


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_TEXT_CHARS else text[: ERROR_TEXT_CHARS - 1] + "…"
