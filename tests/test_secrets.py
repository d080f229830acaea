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

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import REPO
from tests.local_http import serving
from tests.unit.test_secrets import KEY, _judge_spec, leaks

# The fast-tier half (no Ray, no vLLM engine, no child process): tests/unit/test_secrets.py

KEY_ENV = "RMORCH_TEST_SECRET_KEY"
N_ITEMS = 16


# ---- the careless server ----------------------------------------------------------------------------------------


class Quotes:
    """How often the server put the key (or pieces of it) into a response, per kind of response."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1


def _handler(quotes: Quotes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _auth(self) -> str:
            return self.headers.get("Authorization", "")

        def _quote(self) -> str:
            """The credential, whole and cut, as a careless server's error message would have it."""
            auth = self._auth()
            return f"bad credential {auth!r} (starts {auth[7:19]}, ends {auth[-11:]})"

        def do_GET(self) -> None:
            if self.path == "/locked/v1/models":  # this account is locked: the judge cannot load
                quotes.add("401 models")
                return self._send(401, {"error": {"message": self._quote()}})
            if self._auth() != f"Bearer {KEY}":
                return self._send(401, {"error": {"message": "no key"}})
            self._send(200, {"object": "list", "data": [{"id": "leaky-judge", "object": "model"}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if self._auth() != f"Bearer {KEY}":
                return self._send(401, {"error": {"message": "no key"}})
            prompt = body["messages"][-1]["content"]
            h = int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 5
            if h == 0:
                quotes.add("500")
                return self._send(500, {"error": {"message": "upstream failed: " + self._quote()}})
            if h == 1:
                quotes.add("502 text")
                return self._send(502, f"Bad gateway; request had {self._auth()}".encode(), "text/plain")
            if h == 2:
                quotes.add("401")
                return self._send(401, {"error": {"message": self._quote()}})
            text = "[[A]]" if h == 3 else "[[B]]"
            if h == 3:
                quotes.add("200 completion")
                text = f"I was called with {self._auth()} and key piece {KEY[5:17]}. {text}"
            self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})

    return Handler


@pytest.fixture(scope="module")
def server():
    quotes = Quotes()
    with serving(_handler(quotes)) as url:
        yield url, quotes


# ---- the sweep --------------------------------------------------------------------------------------------------


def _rmorch() -> list[str]:
    beside = Path(sys.executable).parent / "rmorch"
    return [str(beside if beside.exists() else REPO / ".venv" / "bin" / "rmorch")]


def _write_suite(path: Path) -> Path:
    rows = [{"q": f"Question {i}: what is {i} + {i}?", "good": f"It is {2 * i}.", "bad": f"It is {2 * i + 1}."}
            for i in range(N_ITEMS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=["local", "cluster"])
def swept(request, server, tmp_path_factory) -> dict[str, Any]:
    """The sweep on the local Ray instance the CLI starts (the key in the CLI's environment, which the instance's
    workers inherit), or joined (`--address`) to a multi-node cluster whose worker nodes alone hold the key, as
    KubeRay gives it to every pod from a secret: there the CLI's environment lacks it."""
    base, quotes = server
    before = dict(quotes.counts)
    tmp = tmp_path_factory.mktemp(f"secrets-{request.param}")
    judge = {"kind": "judge", "backend": "openai", "path": "leaky-judge", "api_key_env": KEY_ENV,
             "request_retries": 1, "max_concurrency": 4}
    spec = {
        "seed": 0, "out": str(tmp / "out"), "resamples": 10,
        "suites": [{"name": "my-prefs", "kind": "file", "data": str(_write_suite(tmp / "prefs.jsonl")),
                    "columns": {"prompt": "q", "chosen": "good", "rejected": "bad"}}],
        "models": ["length",
                   {"name": "api-judge", **judge},  # its base_url: OPENAI_BASE_URL, the openai library's convention
                   {"name": "locked-judge", "base_url": f"{base}/locked/v1", **judge}],
    }
    spec_file = tmp / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    # A short directory of its own for the Ray session (its unix socket paths must stay under ~107 bytes).
    ray_tmp = tempfile.mkdtemp(prefix="rmsec-", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "HF_HUB_OFFLINE": "1", "COLUMNS": "200",
           "NO_COLOR": "1", "OPENAI_BASE_URL": f"{base}/v1"}
    env.pop("RAY_ADDRESS", None)
    env.pop(KEY_ENV, None)
    cmd = [*_rmorch(), "-v", "sweep", str(spec_file), "--quiet"]
    run = {"capture_output": True, "text": True, "timeout": 600, "cwd": tmp}
    cluster_state = None
    try:
        if request.param == "local":
            done = subprocess.run([*cmd, "--num-cpus", "2"], env={**env, KEY_ENV: KEY}, check=False, **run)
        else:
            with _cluster_with_the_key_on_its_workers(ray_tmp) as (cluster, workers):
                done = subprocess.run([*cmd, "--address", cluster.address], env=env, check=False, **run)
                cluster_state = _what_ray_holds(cluster, workers)
        ray_files = {p: p.read_bytes() for p in Path(ray_tmp).rglob("*") if p.is_file() and not p.is_symlink()}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return {"done": done, "out": tmp / "out", "ray_files": ray_files, "base": base, "cluster": cluster_state,
            "quotes": {kind: n - before.get(kind, 0) for kind, n in quotes.counts.items()}}  # this sweep's


@contextlib.contextmanager
def _cluster_with_the_key_on_its_workers(ray_tmp: str) -> Iterator[tuple[Any, set[str]]]:
    """A `ray.cluster_utils.Cluster`: a head with no CPU (no replica runs there) and two 1-CPU worker nodes whose
    environment (inherited by their raylets, so by the replicas they start) holds the key. Yields it and the worker
    nodes' ids."""
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", ray_tmp)
        mp.delenv(KEY_ENV, raising=False)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            mp.setenv(KEY_ENV, KEY)  # the worker nodes' environment only
            workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
            mp.delenv(KEY_ENV)
            cluster.wait_for_nodes()
            yield cluster, {w.node_id for w in workers}
        finally:
            cluster.shutdown()


def _what_ray_holds(cluster: Any, workers: set[str]) -> dict[str, Any]:
    """What Ray's dashboard shows of a cluster, read where the dashboard reads it (the GCS): jobs with their runtime
    environments and metadata, actors, nodes, and the internal key-value store (function table, job, session and
    dashboard data)."""
    from ray._raylet import GcsClient

    gcs = GcsClient(address=cluster.address)
    kv = {}
    for namespace in (None, b"fun", b"job", b"session", b"dashboard", b"cluster"):
        for key in gcs.internal_kv_keys(b"", namespace):
            kv[(namespace, key)] = gcs.internal_kv_get(key, namespace) or b""
    return {"jobs": str(gcs.get_all_job_info()), "nodes": str(gcs.get_all_node_info()), "kv": kv,
            "actors": cluster.global_state.actor_table(None), "workers": workers,
            "head": cluster.head_node.node_id}


def test_the_sweep_ran_and_the_server_quoted_the_key(swept: dict[str, Any]) -> None:
    done = swept["done"]
    where = f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    # The locked judge could not load: exit 1, the reason names the variable (not its value).
    assert done.returncode == 1, where
    assert "locked-judge did not run" in done.stderr and KEY_ENV in done.stderr, where
    assert "rejected the API key in environment variable" in done.stderr, where
    for kind in ("500", "502 text", "401", "200 completion", "401 models"):
        assert swept["quotes"].get(kind, 0) > 0, (kind, swept["quotes"])
    run = json.loads((swept["out"] / "run.json").read_text())
    assert set(run["last_run"]["failed_models"]) == {"locked-judge"}


def test_error_rows_and_outputs_were_redacted_not_dropped(swept: dict[str, Any]) -> None:
    rows = [r for p in (swept["out"] / "results").rglob("*.parquet") for r in pq.read_table(p).to_pylist()]
    judge = [r for r in rows if r["model"] == "api-judge"]
    assert len(judge) == 2 * N_ITEMS  # both orders of every pair
    errors = [r["error"] for r in judge if r["error"]]
    assert any(e.startswith("HTTP 500: upstream failed") and "***" in e for e in errors), errors
    assert any(e.startswith("HTTP 502") and "***" in e for e in errors), errors
    assert any(e.startswith("HTTP 401") and "***" in e and KEY_ENV in e for e in errors), errors
    quoted = [r["raw_output"] for r in judge if r["raw_output"] and "I was called with" in r["raw_output"]]
    assert quoted and all("***" in t and t.endswith("[[A]]") for t in quoted), quoted
    assert any(r["verdict"] is not None for r in judge)


def test_the_key_is_in_no_output_file(swept: dict[str, Any]) -> None:
    out: Path = swept["out"]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.relative_to(out).as_posix() for p in files}
    for expected in ("run.json", "plan.json", "spec.yaml", "report.html", "stats.json", "leaderboard.json",
                     "leaderboard.csv", "leaderboard.md", "items/my-prefs.parquet"):
        assert expected in names, sorted(names)
    assert any(n.startswith("manifest/") for n in names) and any(n.startswith("results/api-judge/") for n in names)
    for p in files:
        data = p.read_bytes()
        assert not leaks(data), (p, leaks(data))
        if p.suffix == ".parquet":  # compressed on disk: the decoded cells too
            text = json.dumps(pq.read_table(p).to_pylist(), default=str)
            assert not leaks(text), (p, leaks(text))
    # The spec copy names the variable, never its value.
    models = yaml.safe_load((out / "spec.yaml").read_text())["models"]
    assert {m.get("api_key_env") for m in models if m["kind"] == "judge"} == {KEY_ENV}
    # the base URL taken from OPENAI_BASE_URL is recorded; the spec's own wins over it
    base = swept["base"]
    assert {m["name"]: m["base_url"] for m in models if m["kind"] == "judge"} == {
        "api-judge": f"{base}/v1", "locked-judge": f"{base}/locked/v1"}


def test_the_key_is_not_on_the_console(swept: dict[str, Any]) -> None:
    done = swept["done"]
    assert not leaks(done.stdout) and not leaks(done.stderr), (leaks(done.stdout), leaks(done.stderr))


def test_the_key_is_in_no_ray_session_file(swept: dict[str, Any]) -> None:
    files = swept["ray_files"]
    logs = [p for p in files if "logs" in p.parts]
    assert any(p.name.startswith("worker-") for p in logs), sorted(p.name for p in logs)[:50]  # the replicas' logs
    # the replicas did log the failures (redacted): the search below reads what they wrote
    assert any(b"conversations failed" in data for p, data in files.items() if p in logs)
    found = {str(p): leaks(data) for p, data in files.items() if leaks(data)}
    assert not found, found


def test_cli_refuses_a_key_in_the_spec_before_anything_runs(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(_judge_spec(api_key_env=KEY)))
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run([*_rmorch(), "sweep", str(spec), "--out", str(out), "--quiet"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "api_key_env" in done.stderr and "Traceback" not in done.stderr
    assert not leaks(done.stdout + done.stderr), done.stderr
    assert not out.exists()


def test_on_a_cluster_the_key_reaches_replicas_only_through_their_nodes(swept: dict[str, Any]) -> None:
    """Multi-node: the CLI (the driver) never had the key; the judges' replicas ran on the worker nodes and read it
    from their own environment (the server accepted it: verdicts); nothing Ray holds carries a piece of it."""
    state = swept["cluster"]
    if state is None:
        pytest.skip("the cluster half of the sweep")
    nodes = {a["Address"]["NodeID"] for a in state["actors"].values()}
    assert nodes and nodes <= state["workers"], (nodes, state["workers"])
    rows = [r for p in (swept["out"] / "results").rglob("*.parquet") for r in pq.read_table(p).to_pylist()]
    assert any(r["model"] == "api-judge" and r["verdict"] is not None for r in rows)
    for name in ("jobs", "nodes"):
        assert not leaks(state[name]), (name, leaks(state[name]))
    assert not leaks(repr(state["actors"])), leaks(repr(state["actors"]))
    found = {key: leaks(value) for key, value in state["kv"].items() if leaks(value)}
    assert not found, found
