"""The database of one measurement: a fresh SQLite file or PostgreSQL schema, and providers on it
for the doomed process and the recovering one."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ruvon.providers.persistence import PersistenceProvider

BACKENDS = ("sqlite", "postgres")


@contextlib.asynccontextmanager
async def fresh_database(backend: str, postgres_url: str) -> AsyncIterator[dict[str, Any]]:
    """A description of a new, empty database for ``backend`` (JSON-ready, handed to the doomed
    process); removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ruvon-recovery-") as tmp:
            yield {"backend": "sqlite", "path": str(Path(tmp) / "recovery.db")}
    elif backend == "postgres":
        from w5 import pg

        schema = f"recovery_{uuid.uuid4().hex[:12]}"
        try:
            yield {"backend": "postgres", "url": postgres_url, "schema": schema}
        finally:
            await pg.drop_schema(postgres_url, schema)
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


def provider_for(database: dict[str, Any], *, pool_max_size: int = 10) -> PersistenceProvider:
    """A new (not yet initialized) provider on ``database``; SQLite with its defaults (WAL,
    ``synchronous=NORMAL``)."""
    if database["backend"] == "sqlite":
        from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider

        return SQLitePersistenceProvider(database["path"])
    from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider

    return PostgresPersistenceProvider(
        database["url"],
        schema=database["schema"],
        pool_min_size=min(2, pool_max_size),
        pool_max_size=pool_max_size,
    )
