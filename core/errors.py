"""Errors that are the user's to fix. The CLI prints them as one clear message and exits non-zero, no traceback.

Anything else that escapes is a bug in rmorch and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import yaml


class UserError(Exception):
    """A problem with the user's spec, data or environment, explained in the message."""


class SpecError(UserError):
    """The sweep spec is invalid. `key` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str, source: str | None = None):
        self.key = key
        where = f"{source}: " if source else ""
        super().__init__(f"{where}spec key '{key}': {message}")


class DataError(UserError):
    """A bad input file. Names the file, the row (1-based line or record number) and the field where known."""

    def __init__(self, file: str, message: str, row: int | None = None, field: str | None = None):
        self.file, self.row, self.field = file, row, field
        parts = [str(file)]
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        super().__init__(f"{': '.join(parts)}: {message}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?) known: a, b, c' -- the tail of an unknown-name message."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; known: {', '.join(known)}"


def read_yaml(path: str, what: str) -> Any:
    """The YAML document in `path`; a UserError beginning with `what` (which names the file) if it cannot be read
    or is not valid UTF-8 YAML. Used for specs and judge templates."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise UserError(f"{what}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise UserError(f"{what}: invalid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{what}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise UserError(f"{what}: invalid YAML: nested too deeply") from None


def first_line(error: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none): for one-line messages."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
