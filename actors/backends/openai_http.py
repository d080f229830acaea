"""OpenAI-compatible HTTP backend of generative judges (`backend: openai`): vLLM serve, SGLang, TGI, OpenAI, ...

Implements the `rmorch.actors.backends.generation.Generator` contract with the `openai` client library: one
synchronous `openai.OpenAI` client per backend instance, `chat.completions.create` against
`{base_url}/chat/completions`.

- Concurrency: `generate` is called from a synchronous Ray actor method. One client (its connection pool) and one
  thread pool of `max_concurrency` threads per backend instance, reused by every call: at most `max_concurrency`
  requests are in flight. Results come back in input order.
- Timeouts and retries are the library's: `timeout_s` per attempt (connect, write, read and pool each), and up to
  `max_retries` retries (so `max_retries + 1` attempts) on 408, 409, 429, 5xx, connection errors and timeouts (a
  server's `x-should-retry: true|false` overrides the status). The wait before a retry is the server's
  `retry-after-ms` or `Retry-After` (seconds or an HTTP date) where it lies in (0, 120] s, else the library's
  exponential backoff (0.5 s doubling up to 8 s, less up to 25 % jitter); a `Retry-After` beyond 120 s is not waited
  for: no retry. So one request takes at most (max_retries + 1) * timeout_s + max_retries * 120 s. After the last
  attempt the conversation gets a `Generation` with `error` ("HTTP 500: <server message> (after 6 attempts)"; the
  attempts are counted from the library's `x-stainless-retry-count` request header). Other statuses (400 prompt too
  long, 401, 403, 404, 422, ...) are not retried. Nothing that goes wrong with one conversation raises or touches
  the others.
- The API key is read once, at construction, from the environment variable named by `api_key_env`, and goes only
  into the Authorization header of each request (set per request, so the library's OPENAI_API_KEY and
  OPENAI_CUSTOM_HEADERS conventions can neither replace it nor add another key; without `api_key_env` no
  Authorization header is sent). It is never logged, never part of an exception text, `Generation.error`,
  `repr()`/`str()`; any server text that is kept (error messages, completion texts) is redacted first (the whole
  key and any 8-character piece of it), then shortened. The library's exceptions, whose texts hold server bodies,
  never leave this module.
- Headers: `organization` and `project` become OpenAI's `OpenAI-Organization` / `OpenAI-Project` headers,
  `extra_headers` (name -> value) go with every request.
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
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

import openai

from rmorch.actors.backends.generation import Generation, Message, SamplingConfig
from rmorch.actors.backends.verdict_probs import LabelProbs
from rmorch.core.errors import UserError

if TYPE_CHECKING:
    from rmorch.actors.judge_prompts import ImageInput

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300  # server text kept in Generation.error / UserError messages
REDACTED = "***"
_REDACT_PIECE = 8  # any piece of the key at least this long is redacted from server text
_MODELS_CHECK_TIMEOUT_S = 30.0
_NO_KEY = "unused"  # the library insists on some key; without api_key_env no Authorization header is sent
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
        # the HTTP client would reject it in a header with an exception text that contains the value
        raise UserError(f"judge '{model_name}': the API key in environment variable {api_key_env} contains "
                        f"whitespace, control or non-ASCII characters")
    return _Secret(value)


def _header_value_ok(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _attempts(request: Any) -> int:
    """How many times the library sent a request, from the retry count it wrote into the last one."""
    try:
        return int(request.headers.get("x-stainless-retry-count", "0")) + 1
    except (AttributeError, TypeError, ValueError):
        return 1


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class OpenAIChatBackend:
    """Chat completions from an OpenAI-compatible server; one instance per replica, reused for every call."""

    backend = "openai"
    dtype = None
    max_model_len = None
    chat_template = "server"

    def __init__(self, base_url: str, model: str, *, model_name: str, api_key_env: str | None = None,
                 max_concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 5,
                 organization: str | None = None, project: str | None = None,
                 extra_headers: Mapping[str, str] | None = None, check_server: bool = True):
        self.model_name = model_name
        where = f"judge '{model_name}'"
        self.base_url, self._display = _validate_base_url(base_url, model_name)
        if not isinstance(model, str) or not model:
            raise UserError(f"{where}: the server model name must be a non-empty string, got {model!r}")
        self.model = model
        for name, value, low in (("max_concurrency", max_concurrency, 1), ("max_retries", max_retries, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise UserError(f"{where}: timeout_s must be a number > 0, got {timeout_s!r}")
        headers = dict(extra_headers or {})
        if not all(isinstance(k, str) and isinstance(v, str) and _header_value_ok(k) and _header_value_ok(v)
                   for k, v in headers.items()):
            raise UserError(f"{where}: extra_headers must map header names to printable ASCII strings")
        for name, value in (("organization", organization), ("project", project)):
            if value is not None and not (isinstance(value, str) and value and _header_value_ok(value)):
                raise UserError(f"{where}: {name} must be a non-empty printable ASCII string, got {value!r}")
        self.max_concurrency = max_concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.api_key_env = api_key_env
        self._key = _read_api_key(api_key_env, model_name)
        self._client = openai.OpenAI(
            api_key=self._key.value if self._key is not None else _NO_KEY, base_url=self.base_url,
            organization=organization, project=project, default_headers=headers or None,
            timeout=self.timeout_s, max_retries=max_retries)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=max_concurrency,
                                                                   thread_name_prefix="openai-judge")
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
        pool = self._open_pool("generate")
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
            except Exception as e:  # noqa: BLE001 -- only if _generate_one itself is broken; keep the others
                out.append(Generation(error=self._redact(f"{type(e).__name__}: {e}", MAX_ERROR_CHARS)))
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
        pool = self._open_pool("verdict_probs")
        shown = images if images is not None else [[] for _ in conversations]
        futures = [pool.submit(self._verdict_one, conv, prefix, labels, ims) for conv, ims in zip(conversations, shown)]
        try:
            return [f.result() for f in futures]
        except BaseException:  # a server without log-probabilities: send none of the requests still queued
            for f in futures:
                f.cancel()
            raise

    def close(self) -> None:
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

    # -- one request -------------------------------------------------------------------------------------------

    def _generate_one(self, conversation: list[Message], sampling: SamplingConfig, seed: int,
                      images: list[ImageInput]) -> Generation:
        completion, err = self._chat(conversation, images, temperature=sampling.temperature, top_p=sampling.top_p,
                                     max_tokens=sampling.max_tokens, seed=int(seed))
        if err is not None:
            return Generation(error=err)
        try:
            choice = completion.choices[0]
            text = choice.message.content
        except (TypeError, KeyError, IndexError, AttributeError):
            return Generation(error=self._redact(f"the response has no choices[0].message (got "
                                                 f"{_keys(completion)})", MAX_ERROR_CHARS))
        usage = completion.usage
        finish = choice.finish_reason
        return Generation(  # the texts are kept (raw_output): redacted like any server text
            text=self._redact(text) if isinstance(text, str) else "",  # None: e.g. cut off inside reasoning
            n_prompt_tokens=_int(getattr(usage, "prompt_tokens", None)),
            n_output_tokens=_int(getattr(usage, "completion_tokens", None)),
            finish_reason=self._redact(finish, 40) if isinstance(finish, str) else None,
        )

    def _verdict_one(self, conversation: list[Message], prefix: str, labels: list[str],
                     images: list[ImageInput]) -> LabelProbs:
        completion, err = self._chat(
            [*conversation, {"role": "assistant", "content": prefix}], images, temperature=0.0, top_p=1.0,
            max_tokens=1, seed=0, logprobs=True, top_logprobs=TOP_LOGPROBS,
            extra_body={"add_generation_prompt": False, "continue_final_message": True})
        if err is not None:
            return LabelProbs(error=err)
        try:
            first = completion.choices[0].logprobs.content[0]
            chosen = first.token
            if not isinstance(chosen, str) or not first.top_logprobs:
                raise KeyError("top_logprobs")
            top: dict[str, float] = {}
            for e in first.top_logprobs:  # tokens that decode alike (byte fallback): the most likely one
                top[e.token] = max(float(e.logprob), top.get(e.token, -math.inf))
        except (TypeError, KeyError, IndexError, ValueError, AttributeError):
            raise UserError(f"judge '{self.model_name}': the server at {self._display} returned no log-probabilities "
                            "for `verdict: logprobs` (it needs `logprobs`/`top_logprobs` and `continue_final_message`"
                            " in chat completions, as vLLM's server has); use `verdict: text`") from None
        p = [math.exp(top[lb]) if lb in top else 0.0 for lb in labels]
        mass = sum(p)
        n = _int(getattr(completion.usage, "prompt_tokens", None))
        if mass <= 0.0:
            return LabelProbs(probs=[1.0 / len(labels)] * len(labels), mass=0.0, greedy_label=False, n_prompt_tokens=n)
        return LabelProbs(probs=[x / mass for x in p], mass=mass, greedy_label=chosen in labels, n_prompt_tokens=n)

    def _chat(self, conversation: list[Message], images: list[ImageInput], **params: Any) -> tuple[Any, str | None]:
        """One chat completion, retried by the library: (the completion, None), or (None, the redacted error text).
        Never raises for anything the network or the server does."""
        try:
            messages = with_image_parts(conversation, images) if images else conversation
        except ValueError as e:  # images but no user turn to put them in
            return None, str(e)
        try:
            completion = self._client.chat.completions.create(model=self.model, messages=messages, n=1, stream=False,
                                                              extra_headers=self._auth_header(), **params)
        except Exception as e:  # noqa: BLE001 -- the library's errors, and a conversation it cannot serialise
            err = self._error_text(e, self.timeout_s)
            if isinstance(e, openai.APIStatusError) and e.status_code in (401, 403) and self.api_key_env:
                err += f" (API key from environment variable {self.api_key_env})"
            return None, err
        if not isinstance(completion, openai.BaseModel):  # a 2xx body that is not JSON comes back as text
            return None, f"HTTP 200 with a body that is not JSON: {self._redact(str(completion), 100)!r}"
        return completion, None

    def _auth_header(self) -> dict[str, Any]:
        """The Authorization header of one request: ours, or none (never one from the library's environment)."""
        return {"Authorization": f"Bearer {self._key.value}" if self._key is not None else openai.Omit()}

    def _error_text(self, e: Exception, timeout_s: float) -> str:
        """What went wrong, for a result row or a message: status and server message, redacted; never the library's
        own exception text (it quotes the server's body)."""
        attempts = 1
        if isinstance(e, openai.APIStatusError):
            text = f"HTTP {e.status_code}: {self._server_message(e.response)}"
            attempts = _attempts(e.response.request)
        elif isinstance(e, openai.APITimeoutError):
            cause = type(e.__cause__).__name__ if e.__cause__ is not None else type(e).__name__
            text = f"request timed out after {timeout_s:g} s ({cause})"
            attempts = _attempts(e.request)
        elif isinstance(e, openai.APIConnectionError):  # refused / reset, protocol and proxy errors
            cause = e.__cause__ if e.__cause__ is not None else e
            text = f"connection error: {type(cause).__name__}: {self._redact(str(cause), 200) or 'no detail'}"
            attempts = _attempts(e.request)
        else:  # a body the library cannot read, a conversation it cannot serialise, ...
            text = f"request failed: {type(e).__name__}: {self._redact(str(e), 200)}"
        return text + (f" (after {attempts} attempts)" if attempts > 1 else "")

    def _server_message(self, resp: Any) -> str:
        """A short, redacted message from an error response: OpenAI-style {"error": {"message": ...}} or text."""
        try:
            text = resp.text
        except Exception:  # noqa: BLE001 -- an undecodable body, whatever the HTTP client raises for it
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
            msg = text.strip() or getattr(resp, "reason_phrase", "") or "(empty body)"
        return self._redact(" ".join(msg.split()), MAX_ERROR_CHARS)

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

    def _open_pool(self, what: str) -> ThreadPoolExecutor:
        if self._pool is None:
            raise RuntimeError(f"judge '{self.model_name}': {what}() after close()")
        return self._pool

    # -- the check at load -------------------------------------------------------------------------------------

    def _served_models(self, base_url: str | None = None, retries: int | None = None) -> list[str] | None:
        """The model ids of GET {base_url}/models (None where the answer has an unknown shape); the library's
        errors pass through."""
        timeout = min(self.timeout_s, _MODELS_CHECK_TIMEOUT_S)
        client = self._client.with_options(timeout=timeout, max_retries=self.max_retries if retries is None
                                           else retries, **({"base_url": base_url} if base_url else {}))
        try:
            page = client.models.list(extra_headers=self._auth_header())
            entries = page.data
        except openai.APIError:
            raise
        except Exception:  # noqa: BLE001 -- a body of another shape (a list, ...): the library cannot page it
            return None
        if not isinstance(entries, list):
            return None
        return [m.id for m in entries if isinstance(getattr(m, "id", None), str)]

    def _answers(self, base_url: str) -> bool:
        """Whether GET {base_url}/models answers 2xx (one attempt)."""
        try:
            self._served_models(base_url=base_url, retries=0)
        except Exception:  # noqa: BLE001 -- any failure: it does not answer
            return False
        return True

    def _check_server(self) -> None:
        """GET /models: reachable, key accepted, `model` served. UserError otherwise."""
        where = f"judge '{self.model_name}'"
        try:
            served = self._served_models()
        except Exception as e:  # noqa: BLE001 -- the library's errors: kept as redacted text only
            status = e.status_code if isinstance(e, openai.APIStatusError) else None
            err = self._error_text(e, min(self.timeout_s, _MODELS_CHECK_TIMEOUT_S))
            if status in (401, 403):
                who = f"the API key in environment variable {self.api_key_env}" if self.api_key_env else \
                    "a request without an API key (set api_key_env)"
                raise UserError(f"{where}: the server at {self._display} rejected {who}: {err}") from None
            if status is None or status in (408, 409, 429) or status >= 500:
                raise UserError(f"{where}: cannot reach an OpenAI-compatible server at {self._display} "
                                f"(GET /models: {err})") from None
            v1 = self.base_url + "/v1"
            if status == 404 and not self.base_url.endswith("/v1") and self._answers(v1):
                # The commonest slip: the server root instead of its API root.
                raise UserError(f"{where}: GET {self._display}/models gave HTTP 404, but {_display_url(v1)} "
                                f"answers: did you mean base_url '{_display_url(v1)}'?") from None
            # 404, 405, ...: a server or proxy without a models endpoint; generation may still work.
            log.info("judge %s: GET %s/models gave %s; skipping the served-model check", self.model_name,
                     self._display, err)
            return
        if served is None:
            log.info("judge %s: GET %s/models answered in an unknown shape; skipping the served-model check",
                     self.model_name, self._display)
            return
        if self.model not in served:
            shown = ", ".join(served[:50]) + (f", ... ({len(served)} in all)" if len(served) > 50 else "")
            raise UserError(self._redact(f"{where}: the server at {self._display} does not serve model "
                                         f"'{self.model}'; it serves: {shown or '(none)'}"))
        log.debug("judge %s: server %s serves %s", self.model_name, self._display, self.model)


def _keys(completion: Any) -> Any:
    """The top-level keys of a response (for an error message), or its type."""
    try:
        return sorted(map(str, completion.to_dict()))[:8]
    except Exception:  # noqa: BLE001 -- not a model at all
        return type(completion).__name__
