"""Fixtures of the server tests: the real server (``uvicorn ruvon_server.main:app``) in a
subprocess on a free port, in a project directory (the order-approval example's ``config/``
and package, plus the Flaky and Slow workflows of ``project/``), on a fresh SQLite file or
PostgreSQL schema; the tests talk to it over HTTP with httpx.

``server`` is one per test module and backend (each test makes its own runs);
``launch_server`` starts one with its own environment (auth, custom routers) for one test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parents[1] / "examples" / "order_approval"
EXTRA = HERE / "project"

LARGE = {
    "order_id": "B-200",
    "customer": "grace",
    "items": [{"sku": "laptop", "quantity": 2, "unit_price": 1450.0}],
}
SMALL = {
    "order_id": "A-100",
    "customer": "ada",
    "items": [{"sku": "pen", "quantity": 3, "unit_price": 2.5}],
}
APPROVAL = {"approved": True, "approver": "mia", "comment": "ok"}
MISSING_ID = "00000000-0000-0000-0000-000000000000"
STARTUP_SECONDS = 30.0


def make_project(root: Path) -> Path:
    """A project directory: the example's config and package, the test workflows, and one
    registry listing them all."""
    root.mkdir(parents=True)
    shutil.copytree(EXAMPLE / "config", root / "config")
    shutil.copytree(EXAMPLE / "order_approval", root / "order_approval")
    shutil.copytree(EXTRA / "server_flows", root / "server_flows")
    for name in ("flaky.yaml", "slow.yaml"):
        shutil.copy(EXTRA / "config" / name, root / "config" / name)
    registry_file = root / "config" / "workflow_registry.yaml"
    registry = yaml.safe_load(registry_file.read_text())
    registry["workflows"] += yaml.safe_load((EXTRA / "registry_extra.yaml").read_text())[
        "workflows"
    ]
    registry_file.write_text(yaml.safe_dump(registry, sort_keys=False))
    return root


def _admin(url: str, sql: str) -> None:
    async def work() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # A thread of its own: a fixture may run while the test's event loop exists.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, work()).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUVON_")}
    env["RUVON_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@dataclass
class Server:
    """A running server and where it keeps things."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    project: Path
    database_url: str

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **options)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def spawn(
    command: list[str], project: Path, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)


def uvicorn_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "ruvon_server.main:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


def wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    pytest.fail(f"The server did not become healthy in {STARTUP_SECONDS} s:\n{log.read_text()}")


def start_server(project: Path, database_url: str, log: Path, **env: str) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = spawn(uvicorn_command(port), project, server_env(database_url, **env), log)
    wait_healthy(process, url, log)
    return Server(url, process, log, project, database_url)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database per module: a SQLite file, or a PostgreSQL schema (named in the
    URL's ``search_path``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'server.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"ruvon_server_{uuid.uuid4().hex[:12]}"
    _admin(base, f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        _admin(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server of this module's tests, auth disabled."""
    root = tmp_path_factory.mktemp("server")
    running = start_server(make_project(root / "project"), database_url, root / "server.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client of the module's server, acting as user ``ann``."""
    with server.client(headers={"X-User-ID": "ann"}) as client:
        yield client


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


LaunchServer = Callable[..., Server]


@pytest.fixture
def launch_server(tmp_path: Path, project: Path) -> Iterator[LaunchServer]:
    """Start a server of this test on a fresh SQLite file, with extra environment."""
    started: list[Server] = []

    def launch(**env: str) -> Server:
        number = len(started)
        database = f"sqlite:///{tmp_path / f'auth{number}.db'}"
        running = start_server(project, database, tmp_path / f"server{number}.log", **env)
        started.append(running)
        return running

    yield launch
    for running in started:
        running.stop()


def error_of(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The error body of ``response``, checked: its status, its shape and its type."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["type"] == kind, error
    assert isinstance(error["message"], str) and error["message"], error
    return error
