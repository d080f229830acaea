"""Secrets: an API key comes only from an environment variable and is written nowhere.

A real `rmorch sweep` (the CLI, as a subprocess, with its own local Ray) scores a small file suite with two
OpenAI-compatible judges against a careless chat server on 127.0.0.1 (a stand-in for a hosted judge API, which
cannot be reached here). The server insists on the key and quotes it back, whole and in pieces: in 500 and 502
bodies (retried, then error rows), in 401 bodies (error rows), inside successful completions (kept as raw_output),
and in the 401 of `GET /models` that makes the second judge fail to load. Then every file under the output
directory (parquet as bytes and decoded), the CLI's stdout and stderr, and every file of the Ray session the sweep
started (RAY_TMPDIR points it at a directory of the test) are searched for the key and for every 8-character piece
of it. The server's counters show that it did quote the key, so a clean search means redaction, not absence.

Then specs that put a secret where only a variable's name belongs, or a password in a URL: refused before anything
runs, naming the key, never repeating the value.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from rmorch.core.errors import SpecError
from rmorch.orchestrator.spec.parse import spec_from_dict

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_secrets.py


# URL-safe characters: an 8-character piece of it cannot turn up by chance in Ray's hex ids
KEY = "sk-test-" + secrets.token_urlsafe(30)
PIECE = 8


def pieces(key: str = KEY) -> set[str]:
    return {key[i:i + PIECE] for i in range(len(key) - PIECE + 1)}


def leaks(text: str | bytes, key: str = KEY) -> list[str]:
    """The pieces of `key` (8 characters or more) found in `text`."""
    found = []
    for p in sorted(pieces(key)):
        needle = p.encode() if isinstance(text, bytes) else p
        if needle in text:
            found.append(p)
    return found


# ---- secrets where a spec has no place for them -----------------------------------------------------------------


def _judge_spec(**model: Any) -> dict[str, Any]:
    return {"suites": [{"name": "rewardbench"}],
            "models": [{"name": "j", "kind": "judge", "backend": "openai", "base_url": "http://127.0.0.1:9/v1",
                        "path": "m", **model}]}


@pytest.mark.parametrize("model,key", [
    ({"api_key_env": KEY}, "models[0].api_key_env"),  # the key itself where its variable's name belongs
    ({"api_key_env": [KEY]}, "models[0].api_key_env"),
    ({"api_key_env": f"Bearer {KEY}"}, "models[0].api_key_env"),
    ({"api_key_env": "my_key"}, "models[0].api_key_env"),  # a variable name must look like one
    ({"api_key": KEY}, "models[0].api_key"),  # no such key: the did-you-mean names keys, not values
    ({"base_url": f"http://user:{KEY}@127.0.0.1:9/v1"}, "models[0].base_url"),
])
def test_spec_errors_never_repeat_a_secret(model: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(_judge_spec(**model))
    assert info.value.key == key
    assert not leaks(str(info.value)) and "my_key" not in str(info.value), str(info.value)


def test_a_url_with_a_password_in_a_suite_is_refused() -> None:
    doc = {"suites": [{"name": "p", "kind": "file", "data": f"https://u:{KEY}@example.invalid/p.jsonl"}],
           "models": ["length"]}
    with pytest.raises(SpecError, match=r"suites\[0\]\.data") as info:
        spec_from_dict(doc)
    assert not leaks(str(info.value))


def test_variable_names_pass() -> None:
    spec = spec_from_dict(_judge_spec(api_key_env="OPENAI_API_KEY"))
    assert spec.models[0].config.api_key_env == "OPENAI_API_KEY"
    assert spec.to_dict()["models"][0]["api_key_env"] == "OPENAI_API_KEY"
