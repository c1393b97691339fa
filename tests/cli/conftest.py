"""Fixtures of the CLI tests: the installed ``ruvon`` console script run in a subprocess, in a
project directory (the order-approval example: ``config/`` and its step package), on a fresh
SQLite file or PostgreSQL schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "order_approval"


def ruvon_script() -> str:
    """The installed console script (next to the interpreter, else on PATH)."""
    here = Path(sys.executable).parent / "ruvon"
    found = str(here) if here.exists() else shutil.which("ruvon")
    if found is None:
        pytest.fail("The 'ruvon' console script is not installed: pip install -e '.[dev]'")
    return found


@dataclass
class Result:
    """What one run of the CLI did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON (the test fails if it is anything else)."""
        return json.loads(self.out)


@dataclass
class Cli:
    """Runs ``ruvon`` in ``cwd`` against ``db``."""

    cwd: Path
    db: str
    env: dict[str, str]

    def __call__(self, *args: str, db: bool = True, stdin: str | None = None) -> Result:
        command = [ruvon_script(), *args]
        if db:
            command += ["--db", self.db]
        done = subprocess.run(
            command,
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project directory: the order-approval example's ``config/`` and step package."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(EXAMPLE / "config", root / "config")
    shutil.copytree(EXAMPLE / "order_approval", root / "order_approval")
    return root


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database URL: a fresh SQLite file, or a fresh PostgreSQL schema (named in the URL's
    ``search_path``, which asyncpg passes to the server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cli.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"ruvon_cli_{uuid.uuid4().hex[:12]}"
    await _admin(base, f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        await _admin(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def cli(project: Path, database: str, tmp_path: Path) -> Cli:
    """The CLI in the project directory, on the test's database, with its own config file."""
    env = {
        **os.environ,
        "RUVON_CONFIG_PATH": str(tmp_path / "cli-config.yaml"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    for name in ("RUVON_DATABASE_URL", "RUVON_DB_URL", "RUVON_CONFIG_DIR"):
        env.pop(name, None)
    return Cli(project, database, env)


CliFactory = Callable[..., Cli]
