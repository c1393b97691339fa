"""Fixtures of the crash tests: the database a killed child and the recovering test share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(database URL, PostgreSQL schema or None) shared by the child and the test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.db'}", None
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return url, schema
