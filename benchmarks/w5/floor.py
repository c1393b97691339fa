"""The physical floor: how many single-row commits of W5's ~5 KB state the database itself takes.

PostgreSQL: raw asyncpg ``UPDATE t SET data = $1::jsonb WHERE id = $2`` from ``concurrency``
tasks (each its own row) through a pool of ``pool_size`` connections, autocommit, so one
statement is one commit. SQLite: raw ``sqlite3`` ``UPDATE`` of a TEXT value in WAL mode with
the given ``synchronous``, one transaction per statement, sequentially on one thread (one writer
at a time is what SQLite allows, so this is its ceiling).
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from w5 import pg
from w5.measure import RunMonitor, percentile
from w5.steps import completed_state

ROWS = 100
WARMUP_PER_ROW = 5
VARIANTS = 1000


def payloads() -> list[str]:
    """W5's completed state as JSON text, in variants that differ in the order id.

    Consecutive writes of a row must differ: SQLite skips rewriting pages whose content does
    not change, so a commit of an identical value writes nothing and syncs nothing.
    """
    state = completed_state("")
    return [
        orjson.dumps({**state, "order_id": f"W5-FLOOR-{n:08d}"}).decode() for n in range(VARIANTS)
    ]


def _latency_summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "commit_p50_ms": round(percentile(ordered, 50) * 1000, 3),
        "commit_p99_ms": round(percentile(ordered, 99) * 1000, 3),
    }


def _cpu(monitor: RunMonitor) -> dict[str, float]:
    keep = (
        "process_cpu_s",
        "process_cpu_pct_of_one_core",
        "postgres_server_cpu_pct_of_one_core",
        "machine_cpu_busy_pct",
        "loadavg_1m_at_start",
    )
    return {key: value for key, value in monitor.summary().items() if key in keep}


async def postgres_floor(
    url: str, *, commits: int, concurrency: int, pool_size: int
) -> dict[str, Any]:
    """Commits/s of single-row jsonb UPDATEs at ``concurrency`` in flight."""
    values = payloads()
    schema = f"w5_floor_{uuid.uuid4().hex[:12]}"
    table = f"{pg.quote_ident(schema)}.t"
    setup = await asyncpg.connect(url)
    try:
        await setup.execute(f"CREATE SCHEMA {pg.quote_ident(schema)}")
        await setup.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, data jsonb NOT NULL)")
        await setup.executemany(
            f"INSERT INTO {table} (id, data) VALUES ($1, $2::jsonb)",
            [(row, values[0]) for row in range(concurrency)],
        )
    finally:
        await setup.close()
    statement = f"UPDATE {table} SET data = $1::jsonb WHERE id = $2"
    pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size)
    latencies: list[float] = []
    try:

        async def updates(row: int, count: int, record: bool) -> None:
            for n in range(count):
                value = values[(row + n + record) % VARIANTS]
                started = time.perf_counter()
                await pool.execute(statement, value, row)
                if record:
                    latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(updates(row, WARMUP_PER_ROW, False) for row in range(concurrency)))
        share, extra = divmod(commits, concurrency)
        with RunMonitor() as monitor:
            started = time.perf_counter()
            await asyncio.gather(
                *(updates(row, share + (row < extra), True) for row in range(concurrency))
            )
            wall = time.perf_counter() - started
    finally:
        await pool.close()
        await pg.drop_schema(url, schema)
    return {
        "engine": "floor",
        "backend": "postgres",
        "method": "asyncpg UPDATE ... SET data = $1::jsonb WHERE id = $2, autocommit",
        "commits": commits,
        "concurrency": concurrency,
        "pool_size": pool_size,
        "payload_bytes": len(values[0]),
        "wall_s": round(wall, 4),
        "commits_per_s": round(commits / wall, 1),
        **_latency_summary(latencies),
        **_cpu(monitor),
    }


def sqlite_floor(*, synchronous: str, commits: int) -> dict[str, Any]:
    """Commits/s of sequential single-row UPDATEs, one transaction each, WAL mode."""
    values = payloads()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="w5-floor-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)  # autocommit
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")
            conn.executemany(
                "INSERT INTO t (id, data) VALUES (?, ?)", [(r, values[0]) for r in range(ROWS)]
            )
            statement = "UPDATE t SET data = ? WHERE id = ?"
            for i in range(ROWS * WARMUP_PER_ROW):
                conn.execute(statement, (values[(i + 1) % VARIANTS], i % ROWS))
            with RunMonitor() as monitor:
                started = time.perf_counter()
                for i in range(commits):
                    value = values[(i + 1) % VARIANTS]
                    begun = time.perf_counter()
                    conn.execute(statement, (value, i % ROWS))
                    latencies.append(time.perf_counter() - begun)
                wall = time.perf_counter() - started
        finally:
            conn.close()
    return {
        "engine": "floor",
        "backend": "sqlite-full" if synchronous == "FULL" else "sqlite",
        "method": f"sqlite3 UPDATE t SET data = ? WHERE id = ?, autocommit, "
        f"journal_mode={mode}, synchronous={synchronous}, one thread",
        "commits": commits,
        "concurrency": 1,
        "payload_bytes": len(values[0]),
        "wall_s": round(wall, 4),
        "commits_per_s": round(commits / wall, 1),
        **_latency_summary(latencies),
        **_cpu(monitor),
    }
