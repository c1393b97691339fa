"""Fixtures for running examples against a real PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, cwd: Path, env_extra: dict[str, str]) -> str:
    """Run ``examples/<name>/run.py`` in ``cwd`` as a user would; return what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUVON_")}
    env.update(env_extra)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name / "run.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


ADMIN_URL = os.environ.get("RUVON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A URL of a fresh, empty PostgreSQL database, dropped after the test."""
    if os.environ.get("RUVON_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("RUVON_TEST_SKIP_POSTGRES=1 set by the developer")
    name = f"ruvon_example_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is not usable: {exc}")
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
