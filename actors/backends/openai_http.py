"""OpenAI-compatible HTTP backend of generative judges (`backend: openai`): vLLM serve, SGLang, TGI, OpenAI, ...

Implements the `rmorch.actors.backends.generation.Generator` contract against `POST {base_url}/chat/completions`.

- Synchronous: `generate` is called from a synchronous Ray actor method. One `httpx.Client` (connection pool) and
  one thread pool of `max_concurrency` threads per backend instance, reused by every call; at most
  `max_concurrency` requests are in flight. Results come back in input order.
- Per request: `timeout_s` (connect, write, read and pool each). Retried with exponential backoff and jitter
  (`backoff_s * 2**attempt`, capped at `max_backoff_s`, drawn from [delay/2, delay]) on 408, 409, 429, 5xx,
  connection errors and timeouts; a `Retry-After` header (seconds or an HTTP date; OpenAI's `retry-after-ms` too)
  replaces the computed delay, capped at `max_backoff_s`. After `max_retries` retries (so `max_retries + 1`
  attempts) the conversation gets a `Generation` with `error` ("HTTP 500: <server message> (after 6 attempts)").
  Other statuses (400 prompt too long, 401, 403, 404, 422, ...) are not retried. Nothing that goes wrong with one
  conversation raises or touches the others.
- The API key is read once, at construction, from the environment variable named by `api_key_env`, and goes only
  into the Authorization header. It is never logged, never part of an exception text, `Generation.error`,
  `repr()`/`str()`; any server text that is kept (error messages, completion texts) is redacted first (the whole key
  and any 8-character piece of it), then shortened.
- Images (vision-language judges): `generate(..., images=...)` sends conversation i's images as OpenAI-style parts
  at the start of its first user turn: `[{"type": "image_url", "image_url": {"url": "data:MIME;base64,..."}},
  ..., {"type": "text", "text": ...}]`, the file's own bytes and MIME type (nothing re-encoded, nothing fetched by
  the server). Conversations without images keep plain string content.
- At construction: the base URL is validated, and (unless `check_server=False`) one `GET {base_url}/models` checks
  that the server is reachable (retried like a generation request, for servers that are still starting), accepts
  the key, and serves `model`; servers without a usable `/models` endpoint skip the model check.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from rmorch.actors.backends.generation import Generation, Message, SamplingConfig
from rmorch.actors.backends.verdict_probs import LabelProbs
from rmorch.core.errors import UserError

if TYPE_CHECKING:
    from rmorch.actors.judge_prompts import ImageInput

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
MAX_ERROR_CHARS = 300  # server text kept in Generation.error / UserError messages
REDACTED = "***"
_REDACT_PIECE = 8  # any piece of the key at least this long is redacted from server text
_MODELS_CHECK_TIMEOUT_S = 30.0
TOP_LOGPROBS = 20  # alternatives per position asked of the server for probability verdicts (OpenAI's maximum)


class _Secret:
    """Holds the API key; its repr never shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __reduce__(self):  # never pickled along with the backend
        raise TypeError("the API key of an OpenAIChatBackend cannot be pickled; build the backend where it runs")


def image_url_part(image: ImageInput) -> dict[str, Any]:
    """An OpenAI chat content part holding the image inline as a base64 data URL."""
    data = base64.b64encode(image.data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{image.mime};base64,{data}"}}


def with_image_parts(conversation: list[Message], images: list[ImageInput]) -> list[dict[str, Any]]:
    """The conversation with the images as content parts at the start of its first user turn."""
    out: list[dict[str, Any]] = []
    placed = False
    for m in conversation:
        if m["role"] == "user" and not placed:
            parts = [image_url_part(im) for im in images] + [{"type": "text", "text": m["content"]}]
            out.append({**m, "content": parts})
            placed = True
        else:
            out.append(m)
    if not placed:
        raise ValueError("a conversation with images needs a user turn to put them in")
    return out


def _validate_base_url(base_url: Any, model_name: str) -> tuple[str, str]:
    """(base_url without trailing slash, the same for messages with any user:password@ removed)."""
    where = f"judge '{model_name}': base_url"
    if not isinstance(base_url, str) or not base_url.strip():
        raise UserError(f"{where} must be a non-empty URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
    url = base_url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as e:
        raise UserError(f"{where} {_display_url(url)!r} is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{where} {_display_url(url)!r} must start with http:// or https:// and name a host, "
                        f"e.g. http://127.0.0.1:8000/v1")
    if parts.query or parts.fragment:
        raise UserError(f"{where} {_display_url(url)!r} must not have a query or fragment")
    path = parts.path.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if path.endswith(suffix):
            fixed = urlunsplit((parts.scheme, parts.netloc, path[: -len(suffix)], "", ""))
            raise UserError(f"{where} {_display_url(url)!r} names an endpoint; give the API root instead, "
                            f"e.g. {_display_url(fixed)!r}")
    clean = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return clean, _display_url(clean)


def _display_url(url: str) -> str:
    """The URL without any user:password@ part (which would be a credential)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, "…@" + parts.netloc.rsplit("@", 1)[1], parts.path, parts.query, parts.fragment))


def _read_api_key(api_key_env: str | None, model_name: str) -> _Secret | None:
    if api_key_env is None:
        return None
    if not isinstance(api_key_env, str) or not api_key_env:
        raise UserError(f"judge '{model_name}': api_key_env must name an environment variable")
    value = os.environ.get(api_key_env, "").strip()
    if not value:
        raise UserError(f"judge '{model_name}': environment variable {api_key_env} (api_key_env) is not set or "
                        f"empty; export the API key in it")
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        # httpx would reject it in a header with an exception text that contains the value.
        raise UserError(f"judge '{model_name}': the API key in environment variable {api_key_env} contains "
                        f"whitespace, control or non-ASCII characters")
    return _Secret(value)


def _parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (delta-seconds or an HTTP date), or None
    if absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class OpenAIChatBackend:
    """Chat completions from an OpenAI-compatible server; one instance per replica, reused for every call."""

    backend = "openai"
    dtype = None
    max_model_len = None
    chat_template = "server"

    def __init__(self, base_url: str, model: str, *, model_name: str, api_key_env: str | None = None,
                 max_concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 5,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0, check_server: bool = True):
        self.model_name = model_name
        where = f"judge '{model_name}'"
        self.base_url, self._display = _validate_base_url(base_url, model_name)
        if not isinstance(model, str) or not model:
            raise UserError(f"{where}: the server model name must be a non-empty string, got {model!r}")
        self.model = model
        for name, value, low in (("max_concurrency", max_concurrency, 1), ("max_retries", max_retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
        for name, value in (("timeout_s", timeout_s), ("backoff_s", backoff_s), ("max_backoff_s", max_backoff_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise UserError(f"{where}: {name} must be a number >= 0, got {value!r}")
        if not timeout_s > 0:
            raise UserError(f"{where}: timeout_s must be > 0, got {timeout_s!r}")
        self.max_concurrency = max_concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.api_key_env = api_key_env
        self._key = _read_api_key(api_key_env, model_name)

        headers = {"Accept": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.value}"  # httpx shows it as [secure] in reprs
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            follow_redirects=False,
            trust_env=True,  # HTTP(S)_PROXY / NO_PROXY as users expect
        )
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=max_concurrency,
                                                                   thread_name_prefix="openai-judge")
        self._closing = threading.Event()  # wakes retry back-offs on close()
        self._rng = random.Random()  # jitter only; never affects results
        try:
            if check_server:
                self._check_server()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        key = f", api_key_env={self.api_key_env!r}" if self.api_key_env else ""
        return (f"OpenAIChatBackend(base_url={self._display!r}, model={self.model!r}, "
                f"model_name={self.model_name!r}{key}, max_concurrency={self.max_concurrency})")

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("OpenAIChatBackend holds an API key and a connection pool and cannot be pickled; "
                        "build it inside the actor that uses it")

    # -- the Generator contract ----------------------------------------------------------------------------------

    def prompt_tokens(self, messages: list[Message], images: list[ImageInput] | None = None) -> None:
        return None  # the server's tokenizer and chat template are unknown here

    def generate(self, conversations: list[list[Message]], sampling: SamplingConfig, seeds: list[int],
                 images: list[list[ImageInput]] | None = None) -> list[Generation]:
        """One Generation per conversation, in order; `images[i]` (optional) are shown with conversation i."""
        if len(seeds) != len(conversations) or (images is not None and len(images) != len(conversations)):
            raise ValueError(f"{len(conversations)} conversations but {len(seeds)} seeds"
                             + (f" and {len(images)} image lists" if images is not None else ""))
        pool = self._pool
        if pool is None or self._closing.is_set():
            raise RuntimeError(f"judge '{self.model_name}': generate() after close()")
        if not conversations:
            return []
        t0 = time.perf_counter()
        shown = images if images is not None else [[] for _ in conversations]
        futures = [pool.submit(self._generate_one, conv, sampling, seed, ims)
                   for conv, seed, ims in zip(conversations, seeds, shown)]
        out = []
        for fut in futures:
            try:
                out.append(fut.result())
            except BaseException as e:  # only if _generate_one itself is broken; keep the others
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
                out.append(Generation(error=self._redact(f"{type(e).__name__}: {e}")))
        n_err = sum(g.error is not None for g in out)
        log.debug("judge %s: %d conversations in %.2f s, %d errors", self.model_name, len(out),
                  time.perf_counter() - t0, n_err)
        if n_err:
            first = next(g.error for g in out if g.error is not None)
            log.warning("judge %s: %d of %d conversations failed (first: %s)", self.model_name, n_err, len(out),
                        first)
        return out

    def verdict_probs(self, conversations: list[list[Message]], prefix: str, labels: list[str],
                      images: list[list[ImageInput]] | None = None) -> list[LabelProbs]:
        """Probability verdicts over HTTP: each conversation ends with an assistant turn holding `prefix`, which the
        server continues (`continue_final_message`, vLLM's chat API) for one token, returning its `top_logprobs`
        (TOP_LOGPROBS). A label's probability is that of the top entry whose text is the label (the likeliest, where
        several tokens decode alike); labels outside the top entries count 0 (the mass then says how much was
        seen). Labels must be single tokens there: ratings (1-10) are not read this way. A server that returns no
        log-probabilities (or no top entries) is a UserError."""
        if any(len(lb) != 1 for lb in labels):
            raise UserError(f"judge '{self.model_name}': `verdict: logprobs` with `backend: openai` reads one-token "
                            f"labels only (A, B, ...); ratings need `backend: vllm`")
        if images is not None and len(images) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(images)} image lists")
        pool = self._pool
        if pool is None or self._closing.is_set():
            raise RuntimeError(f"judge '{self.model_name}': verdict_probs() after close()")
        shown = images if images is not None else [[] for _ in conversations]
        futures = [pool.submit(self._verdict_one, conv, prefix, labels, ims) for conv, ims in zip(conversations, shown)]
        try:
            return [f.result() for f in futures]
        except BaseException:  # a server without log-probabilities: send none of the requests still queued
            for f in futures:
                f.cancel()
            raise

    def _verdict_one(self, conversation: list[Message], prefix: str, labels: list[str],
                     images: list[ImageInput]) -> LabelProbs:
        try:
            payload = self._payload([*conversation, {"role": "assistant", "content": prefix}],
                                    SamplingConfig(temperature=0.0, max_tokens=1), 0, images)
        except ValueError as e:
            return LabelProbs(error=str(e))
        payload.update(logprobs=True, top_logprobs=TOP_LOGPROBS, add_generation_prompt=False,
                       continue_final_message=True)
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            return LabelProbs(error=self._redact(f"conversation is not JSON-serialisable: {e}"))
        status, data, err = self._request("POST", "/chat/completions", content=body)
        if err is not None:
            if status in (401, 403) and self.api_key_env:
                err += f" (API key from environment variable {self.api_key_env})"
            return LabelProbs(error=err)
        try:
            first = data["choices"][0]["logprobs"]["content"][0]
            chosen = first["token"]
            if not isinstance(chosen, str) or not first["top_logprobs"]:
                raise KeyError("top_logprobs")
            top: dict[str, float] = {}
            for e in first["top_logprobs"]:  # tokens that decode alike (byte fallback): the most likely one
                top[e["token"]] = max(float(e["logprob"]), top.get(e["token"], -math.inf))
        except (TypeError, KeyError, IndexError, ValueError, AttributeError):
            raise UserError(f"judge '{self.model_name}': the server at {self._display} returned no log-probabilities "
                            "for `verdict: logprobs` (it needs `logprobs`/`top_logprobs` and `continue_final_message`"
                            " in chat completions, as vLLM's server has); use `verdict: text`") from None
        p = [math.exp(top[lb]) if lb in top else 0.0 for lb in labels]
        mass = sum(p)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        n = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else None
        if mass <= 0.0:
            return LabelProbs(probs=[1.0 / len(labels)] * len(labels), mass=0.0, greedy_label=False, n_prompt_tokens=n)
        return LabelProbs(probs=[x / mass for x in p], mass=mass, greedy_label=chosen in labels, n_prompt_tokens=n)

    def close(self) -> None:
        self._closing.set()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------------------

    def _payload(self, conversation: list[Message], sampling: SamplingConfig, seed: int,
                 images: list[ImageInput] | None = None) -> dict:
        return {
            "model": self.model,
            "messages": with_image_parts(conversation, images) if images else conversation,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": int(seed),
            "n": 1,
            "stream": False,
        }

    def _generate_one(self, conversation: list[Message], sampling: SamplingConfig, seed: int,
                      images: list[ImageInput] | None = None) -> Generation:
        try:
            payload = self._payload(conversation, sampling, seed, images)
        except ValueError as e:  # images but no user turn to put them in
            return Generation(error=str(e))
        try:
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            return Generation(error=self._redact(f"conversation is not JSON-serialisable: {e}"))
        status, data, err = self._request("POST", "/chat/completions", content=body)
        if err is not None:
            if status in (401, 403) and self.api_key_env:
                err += f" (API key from environment variable {self.api_key_env})"
            return Generation(error=err)
        return self._parse_completion(status, data)

    def _request(self, method: str, path: str, content: bytes | None = None, timeout: float | None = None,
                 base_url: str | None = None, retries: int | None = None) -> tuple[int | None, Any, str | None]:
        """(status, parsed JSON body, None) on a 2xx answer, else (status or None, None, redacted error text).

        Retries retryable failures; never raises for anything the network or the server does."""
        url = (base_url or self.base_url) + path
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempts = (self.max_retries if retries is None else retries) + 1
        last = ""
        for attempt in range(attempts):
            if self._closing.is_set() and attempt:
                return None, None, f"{last} (backend closed before retry {attempt})"
            retry_after = None
            status = None
            try:
                resp = self._client.request(method, url, content=content, headers=headers,
                                            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
                status = resp.status_code
            except httpx.TimeoutException as e:
                t = timeout if timeout is not None else self.timeout_s
                last = f"request timed out after {t:g} s ({type(e).__name__})"
                retryable = True
            except httpx.TransportError as e:  # connection refused / reset, protocol errors, proxy errors
                last = f"connection error: {type(e).__name__}: {self._redact(str(e), 200) or 'no detail'}"
                retryable = True
            except httpx.HTTPError as e:  # invalid URL and other client-side errors: no point retrying
                return None, None, f"request failed: {type(e).__name__}: {self._redact(str(e), 200)}"
            else:
                if 200 <= status < 300:
                    try:
                        return status, resp.json(), None
                    except ValueError:
                        return status, None, (f"HTTP {status} with a body that is not JSON: "
                                              f"{self._redact(resp.text, 100)!r}")
                last = f"HTTP {status}: {self._server_message(resp)}"
                retryable = status in RETRY_STATUSES or status >= 500
                retry_after = _parse_retry_after(resp.headers) if retryable else None
            if not retryable:
                log.debug("judge %s: %s %s -> %s (not retried)", self.model_name, method, path, last)
                return status, None, last
            if attempt + 1 >= attempts:
                break
            delay = self._backoff(attempt, retry_after)
            log.debug("judge %s: %s %s attempt %d/%d -> %s; retrying in %.2f s", self.model_name, method, path,
                      attempt + 1, attempts, last, delay)
            if self._closing.wait(delay):
                return status, None, f"{last} (backend closed before retry {attempt + 1})"
        suffix = f" (after {attempts} attempts)" if attempts > 1 else ""
        return status, None, last + suffix

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        delay = min(self.backoff_s * (2 ** attempt), self.max_backoff_s)
        return self._rng.uniform(delay / 2, delay)

    def _server_message(self, resp: httpx.Response) -> str:
        """A short, redacted message from an error response: OpenAI-style {"error": {"message": ...}} or text."""
        try:
            text = resp.text
        except Exception:  # noqa: BLE001 -- an undecodable body, whatever httpx raises for it
            return "(unreadable body)"
        msg = None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            err = data.get("error", data.get("detail", data.get("message")))
            if isinstance(err, dict):
                err = err.get("message", err)
            if err is not None:
                msg = err if isinstance(err, str) else json.dumps(err, ensure_ascii=False)
        if msg is None:
            msg = text.strip() or resp.reason_phrase or "(empty body)"
        return self._redact(" ".join(msg.split()), MAX_ERROR_CHARS)

    def _parse_completion(self, status: int, data: Any) -> Generation:
        try:
            choice = data["choices"][0]
            message = choice.get("message") or {}
            text = message.get("content")
        except (TypeError, KeyError, IndexError, AttributeError):
            keys = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
            return Generation(error=self._redact(f"HTTP {status}: response has no choices[0].message (got {keys})",
                                                 MAX_ERROR_CHARS))
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}

        def _int(v):
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        finish = choice.get("finish_reason")
        return Generation(  # the texts are kept (raw_output): redacted like any server text
            text=self._redact(text) if isinstance(text, str) else "",  # None: e.g. cut off inside reasoning
            n_prompt_tokens=_int(usage.get("prompt_tokens")),
            n_output_tokens=_int(usage.get("completion_tokens")),
            finish_reason=self._redact(finish, 40) if isinstance(finish, str) else None,
        )

    def _redact(self, text: str, limit: int | None = None) -> str:
        """Remove the API key (whole, and any piece of 8+ characters of it) from text, then shorten it."""
        text = str(text)
        if self._key is not None:
            key = self._key.value
            text = text.replace(key, REDACTED)
            n = min(_REDACT_PIECE, len(key))
            pieces = {key[i:i + n] for i in range(len(key) - n + 1)}
            covered = [False] * len(text)
            for i in range(len(text) - n + 1):
                if text[i:i + n] in pieces:
                    covered[i:i + n] = [True] * n
            if any(covered):
                out, i = [], 0
                while i < len(text):
                    if covered[i]:
                        while i < len(text) and covered[i]:
                            i += 1
                        out.append(REDACTED)
                    else:
                        out.append(text[i])
                        i += 1
                text = "".join(out)
        if limit is not None and len(text) > limit:
            text = text[: limit - 1] + "…"
        return text

    def _check_server(self) -> None:
        """GET /models: reachable, key accepted, `model` served. UserError otherwise."""
        where = f"judge '{self.model_name}'"
        status, data, err = self._request("GET", "/models", timeout=min(self.timeout_s, _MODELS_CHECK_TIMEOUT_S))
        if err is not None:
            if status in (401, 403):
                who = f"the API key in environment variable {self.api_key_env}" if self.api_key_env else \
                    "a request without an API key (set api_key_env)"
                raise UserError(f"{where}: the server at {self._display} rejected {who}: {err}")
            if status is None or status in RETRY_STATUSES or status >= 500:
                raise UserError(f"{where}: cannot reach an OpenAI-compatible server at {self._display} "
                                f"(GET /models: {err})")
            if status == 404 and not self.base_url.endswith("/v1"):
                # The commonest slip: the server root instead of its API root. Say so if {base_url}/v1 answers.
                v1 = self.base_url + "/v1"
                _, _, err2 = self._request("GET", "/models", timeout=min(self.timeout_s, _MODELS_CHECK_TIMEOUT_S),
                                            base_url=v1, retries=0)
                if err2 is None:
                    raise UserError(f"{where}: GET {self._display}/models gave HTTP 404, but {_display_url(v1)} "
                                    f"answers: did you mean base_url '{_display_url(v1)}'?")
            # 404, 405, ...: a server or proxy without a models endpoint; generation may still work.
            log.info("judge %s: GET %s/models gave %s; skipping the served-model check", self.model_name,
                     self._display, err)
            return
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            log.info("judge %s: GET %s/models answered in an unknown shape; skipping the served-model check",
                     self.model_name, self._display)
            return
        served = [e.get("id") for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if self.model not in served:
            shown = ", ".join(served[:50]) + (f", ... ({len(served)} in all)" if len(served) > 50 else "")
            raise UserError(self._redact(f"{where}: the server at {self._display} does not serve model "
                                         f"'{self.model}'; it serves: {shown or '(none)'}"))
        log.debug("judge %s: server %s serves %s", self.model_name, self._display, self.model)
