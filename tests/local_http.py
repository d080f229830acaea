"""A local HTTP server for tests that stand in for a hosted API (an API key cannot exist here), and a pass-through
proxy that puts a failing-then-recovering server in front of a real one (`proxy`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 (a free port) in a background thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that answers JSON (`send_json`): the base of the tests' stand-in API servers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def send_json(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Proxy:
    """A pass-through HTTP proxy to `upstream` (e.g. a real `vllm serve`), in a thread on 127.0.0.1 (see `proxy`):
    every request is forwarded as it came (method, path, headers, body) and the upstream's answer returned, except
    that while `fail_next` > 0 a POST to a path ending in `fail_path` is answered with HTTP 500 instead (and counts
    `fail_next` down): a server that fails some requests, then recovers. `requests` counts every request by (method,
    path); `failed` the ones answered 500."""

    def __init__(self, upstream: str, fail_path: str = "/chat/completions") -> None:
        import httpx

        self.upstream = upstream.rstrip("/")
        self.fail_path = fail_path
        self.fail_next = 0
        self.requests: dict[tuple[str, str], int] = {}
        self.failed = 0
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=300.0)

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return self.requests.get((method, path), 0)

    def _should_fail(self, method: str, path: str) -> bool:
        with self.lock:
            self.requests[(method, path)] = self.requests.get((method, path), 0) + 1
            if method == "POST" and path.endswith(self.fail_path) and self.fail_next > 0:
                self.fail_next -= 1
                self.failed += 1
                return True
            return False

    def handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                if proxy._should_fail(self.command, self.path):
                    return self._send(500, b'{"error": {"message": "internal server error (test proxy)", '
                                           b'"type": "InternalServerError", "code": 500}}', "application/json")
                skip = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                resp = proxy.client.request(self.command, proxy.upstream + self.path, headers=headers,
                                            content=body or None)
                self._send(resp.status_code, resp.content, resp.headers.get("content-type", "application/json"))

            do_GET = do_POST = _forward

        return Handler


@contextmanager
def proxy(upstream: str, fail_path: str = "/chat/completions") -> Iterator[tuple[str, Proxy]]:
    """A `Proxy` to `upstream` (a base URL without path, e.g. http://127.0.0.1:8000) served on a free port; yields
    (its base URL, the Proxy)."""
    p = Proxy(upstream, fail_path)
    try:
        with serving(p.handler()) as url:
            yield url, p
    finally:
        p.client.close()
