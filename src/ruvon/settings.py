"""Choosing a persistence provider from a database URL (``RUVON_DATABASE_URL``).

The URL's scheme maps to a provider class through an alias table; the class is imported only
when chosen, so ``import ruvon`` loads neither asyncpg nor anything else optional.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruvon.definition.loader import import_callable
from ruvon.providers.persistence import PersistenceProvider

__all__ = [
    "DEFAULT_DATABASE_URL",
    "PERSISTENCE_ALIASES",
    "database_url",
    "persistence_from_url",
    "sqlite_path_from_url",
]

DEFAULT_DATABASE_URL = "sqlite:///ruvon.db"
"""Used when no URL is configured: the SQLite file ``ruvon.db`` in the working directory."""

PERSISTENCE_ALIASES: Mapping[str, str] = {
    "memory": "ruvon.implementations.persistence.memory:MemoryPersistenceProvider",
    "sqlite": "ruvon.implementations.persistence.sqlite:SQLitePersistenceProvider",
    "postgresql": "ruvon.implementations.persistence.postgres:PostgresPersistenceProvider",
    "postgres": "ruvon.implementations.persistence.postgres:PostgresPersistenceProvider",
}
"""URL scheme -> provider class path."""

_URL_VARIABLES = ("RUVON_DATABASE_URL", "RUVON_DB_URL")


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """The configured database URL: ``RUVON_DATABASE_URL`` (or ``RUVON_DB_URL``), else the
    default SQLite file."""
    env = os.environ if environ is None else environ
    for name in _URL_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value
    return DEFAULT_DATABASE_URL


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///relative.db`` -> ``relative.db``; ``sqlite:////abs.db`` -> ``/abs.db``;
    ``sqlite://`` or ``sqlite:///:memory:`` -> ``:memory:``."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("//"):
        raise ValueError(f"Invalid SQLite URL '{url}': expected sqlite:///path/to/file.db")
    path = rest[2:]
    if path in ("", "/", "/:memory:", ":memory:"):
        return ":memory:"
    if not path.startswith("/"):
        raise ValueError(f"Invalid SQLite URL '{url}': expected sqlite:///path/to/file.db")
    path = path[1:]
    return path if path else ":memory:"


def persistence_from_url(url: str | None = None, **options: Any) -> PersistenceProvider:
    """A new (not yet initialized) persistence provider for ``url`` (default: configured)."""
    url = url or database_url()
    scheme = urlsplit(url).scheme.lower().split("+", 1)[0]
    class_path = PERSISTENCE_ALIASES.get(scheme)
    if class_path is None:
        known = ", ".join(sorted(PERSISTENCE_ALIASES))
        raise ValueError(f"Unsupported database URL '{url}': the scheme must be one of {known}")
    try:
        provider_class = import_callable(class_path)
    except ImportError as exc:
        if not scheme.startswith("postgres"):
            raise
        raise ImportError(
            f"PostgreSQL needs an optional dependency: pip install 'ruvon-sdk[postgres]' ({exc})"
        ) from exc
    if scheme == "memory":
        provider: PersistenceProvider = provider_class(**options)
    elif scheme == "sqlite":
        path = sqlite_path_from_url(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        provider = provider_class(path, **options)
    else:
        provider = provider_class(url, **options)
    return provider
