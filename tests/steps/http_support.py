"""What the HTTP step tests share: a real HTTP server on a free local port (a thread of this
process), the state model and step functions their workflow files name, and a file writer.

The server's routes:

- ``/echo/...``: 200, JSON describing the request (method, path, query, headers, JSON body);
- ``/text``: 200, ``text/plain``;
- ``/status/<code>/...``: that status, JSON ``{"error": ..., "echo": <the request's
  Authorization header and path>}`` (a server that repeats what it got);
- ``/flaky/<n>``: 503 for the first ``n`` requests to that path, then 200;
- ``/slow``: answers only when the test ends (or after 5 s).

Every request is recorded (``server.requests``) before it is answered.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml
from pydantic import BaseModel

from ruvon.models import StepContext
from tests.support.config import ConfigDir, workflow

H = "tests.steps.http_support"
"""This module, as workflow files name it."""

SLOW_LIMIT = 5.0
"""How long ``/slow`` waits at most for the test to end."""


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) breaks the pipe; nothing to report.
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        recorded = Recorded(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        status, content_type, payload = self.server.owner.answer(recorded)
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class LocalServer:
    """The test server (see the module docstring); ``url`` is its base URL."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def to(self, path: str) -> list[Recorded]:
        """The requests received for ``path``, in order."""
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def answer(self, request: Recorded) -> tuple[int, str, str]:
        with self._lock:
            self.requests.append(request)
            self._counts[request.path] += 1
            count = self._counts[request.path]
        route, _, rest = request.path.strip("/").partition("/")
        if route == "echo":
            try:
                sent = json.loads(request.body) if request.body else None
            except ValueError:
                sent = None
            described = {
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "headers": request.headers,
                "json": sent,
                "text": request.body.decode(),
            }
            return 200, "application/json", json.dumps(described)
        if route == "text":
            return 200, "text/plain; charset=utf-8", "plain text answer"
        if route == "status":
            code = int(rest.partition("/")[0])
            echo = f"{request.headers.get('authorization', '')} {request.path}"
            return code, "application/json", json.dumps({"error": f"status {code}", "echo": echo})
        if route == "flaky":
            if count <= int(rest):
                return 503, "application/json", json.dumps({"error": "busy"})
            return 200, "application/json", json.dumps({"ok": True, "calls": count})
        if route == "slow":
            self.release.wait(SLOW_LIMIT)
            return 200, "application/json", "{}"
        return 404, "text/plain", "no such route"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class HttpState(BaseModel):
    """The state of the HTTP test workflows."""

    order_id: str
    base_url: str = ""
    method: str = "POST"
    amount: int = 0
    customer: dict[str, Any] = {}
    response: Any = None
    """The HTTP step's result: the parsed body, or a dict of the ``includes``."""
    checked: bool = False


FAILED_ONCE: set[str] = set()
"""Workflow ids whose ``fail_once`` step already failed."""


def fail_once(state: HttpState, context: StepContext) -> dict[str, Any]:
    """Fails on its first call per workflow, then succeeds."""
    if context.workflow_id not in FAILED_ONCE:
        FAILED_ONCE.add(context.workflow_id)
        raise RuntimeError("checker not ready")
    return {"checked": True}


def write_http(
    config: ConfigDir, workflow_type: str, *, after: Sequence[dict[str, Any]] = (), **keys: Any
) -> None:
    """Write a workflow whose first step is the HTTP step ``Call`` (``keys``), then ``after``."""
    steps = [{"name": "Call", "type": "HTTP", **keys}, *after]
    text = yaml.safe_dump(steps, sort_keys=False)
    config.write(workflow_type, workflow(workflow_type, text, state_model=f"{H}.HttpState"))
