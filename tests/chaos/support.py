"""What the chaos tests share: restarting the PostgreSQL server of the test run (and making
sure it runs again afterwards), and a TCP proxy that loses a connection at a chosen moment."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = ["STEPS", "CutProxy", "ensure_running", "restart_command", "runs", "through"]

STEPS = ("s1", "s2", "s3", "s4", "s5")
"""The steps of the Chaos workflow (``tests/chaos/conftest.py``)."""

RESTART_ENV = "RUVON_TEST_POSTGRES_RESTART"
"""A command restarting the test server, when it is not a local ``pg_ctlcluster`` cluster."""


def _cluster(url: str) -> tuple[str, str]:
    """(version, name) of the local cluster listening on the port of ``url``."""
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        pytest.fail(
            f"Restarting PostgreSQL needs pg_ctlcluster (postgresql-common), or {RESTART_ENV} "
            "naming a command that restarts the test server.",
            pytrace=False,
        )
    port = urlsplit(url).port or 5432
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    pytest.fail(
        f"No local PostgreSQL cluster listens on port {port} (pg_lsclusters: {listing!r}); "
        f"set {RESTART_ENV} to a command that restarts the server of {url}.",
        pytrace=False,
    )


def restart_command(url: str) -> list[str]:
    """The command that restarts the server of ``url`` (``$RUVON_TEST_POSTGRES_RESTART``, else
    ``pg_ctlcluster <version> <name> restart``, which needs root or the postgres user)."""
    custom = os.environ.get(RESTART_ENV, "").strip()
    if custom:
        return shlex.split(custom)
    version, name = _cluster(url)
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"]


def _ready(url: str) -> bool:
    parts = urlsplit(url)
    command = ["pg_isready", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    try:
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_running(url: str) -> None:
    """Wait (bounded) until the server of ``url`` accepts connections; start the local cluster
    if it does not come back by itself. A chaos test calls this whatever its outcome."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _ready(url):
            return
        time.sleep(0.2)
    if not os.environ.get(RESTART_ENV, "").strip():
        version, name = _cluster(url)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
            capture_output=True,
            timeout=60,
        )
    deadline = time.monotonic() + 30
    while not _ready(url):
        assert time.monotonic() < deadline, f"PostgreSQL at {url} did not come back"
        time.sleep(0.2)


def runs(log: Path) -> list[tuple[str, str, str]]:
    """(workflow id, step, run id) of every step run, in order."""
    if not log.exists():
        return []
    runs: list[tuple[str, str, str]] = []
    for line in log.read_text().splitlines():
        workflow_id, step, run_id = line.split()
        runs.append((workflow_id, step, run_id))
    return runs


def through(url: str, port: int) -> str:
    """``url`` pointed at a proxy on 127.0.0.1:``port``, without TLS (so that the proxy can
    read the protocol's message boundaries)."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    password = f":{parts.password}" if parts.password else ""
    query = "&".join(q for q in (parts.query, "sslmode=disable") if q)
    return urlunsplit((parts.scheme, f"{user}{password}@127.0.0.1:{port}", parts.path, query, ""))


def _messages(data: bytes) -> tuple[list[bytes], bytes]:
    """The whole protocol messages at the start of ``data`` (type byte, int32 length that
    counts itself, body), and the unfinished rest."""
    messages: list[bytes] = []
    position = 0
    while position + 5 <= len(data):
        end = position + 1 + int.from_bytes(data[position + 1 : position + 5], "big")
        if end > len(data):
            break
        messages.append(data[position:end])
        position = end
    return messages, data[position:]


class CutProxy:
    """A TCP proxy in front of PostgreSQL that can lose a connection at a chosen moment.

    :meth:`cut_after_reply`: the next statement that executes is let through and answered by
    the server — its transaction has committed when the ReadyForQuery after its BindComplete
    comes back — but the answer is dropped and the client's connection closed: the client
    sees a lost connection, the database has the write (``dropped_rows``: the rows of the
    answer it never saw). :meth:`cut_before_send`: the next thing the client sends is dropped
    and the connection closed: nothing reached the server. Either fires once; later connections
    (the client's retry) pass untouched. ``connections`` counts the connections opened.
    """

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._mode: str | None = None
        self.cut = asyncio.Event()
        """Set once the armed cut has happened."""
        self.connections = 0
        """Connections the proxy accepted so far."""
        self.dropped_rows = 0
        """Data rows of the answer :meth:`cut_after_reply` dropped."""
        self.port: int | None = None
        """The local port it listens on, once started."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on a free local port; return it."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def cut_after_reply(self) -> None:
        self._mode = "after"

    def cut_before_send(self) -> None:
        self._mode = "before"

    async def _handle(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            server_in, server_out = await asyncio.open_connection(*self._target)
        except OSError:
            client_out.transport.abort()
            self._tasks.discard(task)
            return

        def lose() -> None:
            self._mode = None
            self.cut.set()
            client_out.transport.abort()
            server_out.transport.abort()

        async def upstream() -> None:
            while data := await client_in.read(65536):
                if self._mode == "before":
                    lose()
                    return
                server_out.write(data)
                await server_out.drain()
            server_out.close()

        async def downstream() -> None:
            rest = b""
            answer: list[bytes] = []
            while data := await server_in.read(65536):
                if self._mode != "after":
                    client_out.write(rest + b"".join(answer) + data)
                    rest, answer = b"", []
                    await client_out.drain()
                    continue
                # Armed: what comes before the execution of a statement (e.g. the reply to its
                # preparation) goes on; from its BindComplete on the answer is held back, and
                # once ReadyForQuery ends it (the transaction has committed), it is dropped.
                messages, rest = _messages(rest + data)
                passed = b""
                for message in messages:
                    if answer or message[:1] == b"2":
                        answer.append(message)
                        if message[:1] == b"Z":
                            self.dropped_rows = sum(m[:1] == b"D" for m in answer)
                            lose()  # the client never hears that its statement committed
                            return
                    else:
                        passed += message
                if passed:
                    client_out.write(passed)
                    await client_out.drain()
            client_out.close()

        try:
            await asyncio.gather(upstream(), downstream())
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            client_out.transport.abort()
            server_out.transport.abort()
            self._tasks.discard(task)
