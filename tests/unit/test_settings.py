"""Choosing the persistence provider from RUVON_DATABASE_URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.settings import (
    DEFAULT_DATABASE_URL,
    database_url,
    persistence_from_url,
    sqlite_path_from_url,
)


def test_default_is_the_sqlite_file_in_the_working_directory() -> None:
    assert database_url({}) == DEFAULT_DATABASE_URL == "sqlite:///ruvon.db"
    assert database_url({"RUVON_DATABASE_URL": "memory://"}) == "memory://"
    assert database_url({"RUVON_DB_URL": "memory://"}) == "memory://"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///ruvon.db", "ruvon.db"),
        ("sqlite:///data/app.db", "data/app.db"),
        ("sqlite:////var/lib/app.db", "/var/lib/app.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://", ":memory:"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == path


def test_each_scheme_chooses_its_provider(tmp_path: Path) -> None:
    assert isinstance(persistence_from_url("memory://"), MemoryPersistenceProvider)
    sqlite = persistence_from_url(f"sqlite:///{tmp_path}/sub/app.db")
    assert isinstance(sqlite, SQLitePersistenceProvider)
    assert (tmp_path / "sub").is_dir()
    pg = persistence_from_url("postgresql://postgres@127.0.0.1:5432/test")
    assert isinstance(pg, PostgresPersistenceProvider)


def test_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Unsupported database URL 'mysql://x'"):
        persistence_from_url("mysql://x")
    with pytest.raises(ValueError, match="expected sqlite:///path"):
        sqlite_path_from_url("sqlite:relative.db")
