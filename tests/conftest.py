"""Fixtures shared by the whole test suite. Each section is self-contained."""

from __future__ import annotations

# =========================================================================================
# Persistence providers: `store` runs a test on memory, SQLite and PostgreSQL.
#
# PostgreSQL comes from RUVON_TEST_POSTGRES_URL (default: local server, database "test").
# If it cannot be reached, every PostgreSQL test fails with the reason; a developer without
# a server may set RUVON_TEST_SKIP_POSTGRES=1 to skip them instead (CI never does). Each test
# gets its own PostgreSQL schema, dropped afterwards, so runs are isolated and repeatable.
# =========================================================================================
import asyncio
import fcntl
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider

POSTGRES_URL_ENV = "RUVON_TEST_POSTGRES_URL"
POSTGRES_SKIP_ENV = "RUVON_TEST_SKIP_POSTGRES"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _probe_postgres(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server of the test run, checked once; unreachable → every use fails."""
    if os.environ.get(POSTGRES_SKIP_ENV) == "1":
        pytest.skip(f"{POSTGRES_SKIP_ENV}=1: PostgreSQL tests skipped by the developer")
    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    # A thread of its own: no event loop may be running in the test's thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, _probe_postgres(url)).result()
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
            pytest.fail(
                f"PostgreSQL is unreachable at {url} ({type(exc).__name__}: {exc}). Start it, "
                f"point {POSTGRES_URL_ENV} at a server, or set {POSTGRES_SKIP_ENV}=1 to skip "
                "the PostgreSQL tests.",
                pytrace=False,
            )
    return url


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def postgres_schema(postgres_url: str) -> AsyncIterator[str]:
    """The name of a PostgreSQL schema private to this test (created by the provider)."""
    name = f"ruvon_test_{uuid.uuid4().hex}"
    yield name
    await _admin(postgres_url, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
async def memory_store() -> AsyncIterator[MemoryPersistenceProvider]:
    """An initialized in-memory provider."""
    provider = MemoryPersistenceProvider()
    await provider.initialize()
    yield provider
    await provider.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLitePersistenceProvider]:
    """An initialized SQLite provider on a fresh file."""
    provider = SQLitePersistenceProvider(tmp_path / "ruvon.db")
    await provider.initialize()
    yield provider
    await provider.close()


@pytest.fixture
async def postgres_store(
    postgres_url: str, postgres_schema: str
) -> AsyncIterator[PostgresPersistenceProvider]:
    """An initialized PostgreSQL provider on a fresh schema."""
    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=4
    )
    await provider.initialize()
    yield provider
    await provider.close()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def store(request: pytest.FixtureRequest) -> PersistenceProvider:
    """An initialized, empty provider of each kind: the test runs once per backend."""
    provider: PersistenceProvider = request.getfixturevalue(f"{request.param}_store")
    return provider


# =========================================================================================


# =========================================================================================
# Running in parallel (pytest-xdist, `-n`): the workers share PostgreSQL and Redis. A test
# marked `exclusive` (it restarts the PostgreSQL server) runs while no other test runs: every
# test holds a shared lock on a file for its duration, an exclusive test an exclusive one. A
# second lock, the gate, gives the exclusive test precedence: once it waits, no new test
# starts. The files are the same for every run on the machine, so two runs at once keep out of
# each other's way too. Without xdist the locks cost two flock calls per test.
# =========================================================================================
_LOCKS = Path(tempfile.gettempdir()) / "ruvon-tests"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _LOCKS.mkdir(exist_ok=True)
    with (
        open(_LOCKS / "gate.lock", "a+b") as gate,
        open(_LOCKS / "services.lock", "a+b") as services,
    ):
        if item.get_closest_marker("exclusive") is not None:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fcntl.flock(services, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)
            fcntl.flock(services, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            return (yield)
        finally:
            fcntl.flock(services, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)
