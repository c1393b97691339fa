"""W5 on DBOS Transact, for comparison: the same five steps, state and concurrency.

Five ``@DBOS.step`` coroutines with trivial bodies, each returning the updated ~5 KB order as a
dict, and one ``@DBOS.workflow`` coroutine calling them in sequence. Each workflow is awaited
inline under ``SetWorkflowID`` (as Ruvon's ``create_workflow`` + ``next_step`` are), 100 at a
time, on a fresh system database: its own PostgreSQL database (created here and dropped after)
or an SQLite file in a temporary directory.

Importing this module imports ``dbos`` and registers the functions, so only the process that
runs DBOS imports it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetWorkflowID
from sqlalchemy import event

from w5 import pg
from w5.measure import warm_then_measure
from w5.steps import STEP_FIELDS, OrderState, make_order

_INITIAL: dict[str, Any] = OrderState.model_validate(make_order("")).model_dump(mode="json")


def initial_order(workflow_id: str) -> dict[str, Any]:
    return {**_INITIAL, "order_id": workflow_id}


@DBOS.step()
async def validate(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "validated": True}


@DBOS.step()
async def price(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "priced": True}


@DBOS.step()
async def reserve(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "reserved": True}


@DBOS.step()
async def invoice(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "invoiced": True}


@DBOS.step()
async def ship(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "shipped": True}


@DBOS.workflow()
async def w5_workflow(order: dict[str, Any]) -> dict[str, Any]:
    order = await validate(order)
    order = await price(order)
    order = await reserve(order)
    order = await invoice(order)
    return await ship(order)


_WRITES = ("INSERT", "UPDATE", "DELETE")


def _writes(statement: str) -> bool:
    head = statement.lstrip()[:6].upper()
    if head.startswith(_WRITES):
        return True
    return head.startswith("WITH") and any(w in statement.upper() for w in _WRITES)


class WriteCommitCounter:
    """Counts DBOS's committed write transactions through SQLAlchemy's engine events.

    A transaction counts when it ran at least one INSERT/UPDATE/DELETE and committed; a write
    statement run in autocommit counts by itself. Read-only transactions are not counted
    (``transactions`` counts every commit, reads included).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.write_commits = 0
        self.transactions = 0
        event.listen(sa.Engine, "before_cursor_execute", self._before_execute)
        event.listen(sa.Engine, "commit", self._commit)
        event.listen(sa.Engine, "rollback", self._rollback)

    def _before_execute(self, conn: sa.Connection, cursor: Any, statement: str, *args: Any) -> None:
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        if autocommit:
            with self._lock:
                self.transactions += 1
                self.write_commits += _writes(statement)
        elif _writes(statement):
            conn.info["w5_wrote"] = True

    def _commit(self, conn: sa.Connection) -> None:
        wrote = conn.info.pop("w5_wrote", False)
        with self._lock:
            self.transactions += 1
            self.write_commits += wrote

    def _rollback(self, conn: sa.Connection) -> None:
        conn.info.pop("w5_wrote", None)

    def reset(self) -> None:
        with self._lock:
            self.write_commits = self.transactions = 0


@contextlib.asynccontextmanager
async def system_database(
    backend: str, postgres_url: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A fresh DBOS system database URL for ``backend``; removed afterwards."""
    if backend == "postgres":
        name = f"w5_dbos_{uuid.uuid4().hex[:12]}"
        await pg.create_database(postgres_url, name)
        try:
            yield pg.with_database(postgres_url, name), {"database": name}
        finally:
            await pg.drop_database(postgres_url, name)
    elif backend in ("sqlite", "sqlite-full"):
        with tempfile.TemporaryDirectory(prefix="w5-dbos-") as tmp:
            path = Path(tmp) / "dbos.sqlite"
            # DBOS sets no journal_mode or synchronous: a rollback journal with SQLite's
            # default synchronous=FULL.
            yield f"sqlite:///{path}", {"sqlite_file": str(path), "journal": "DELETE, FULL"}
    else:
        raise ValueError(f"DBOS runs on postgres or sqlite, not {backend!r}")


async def verify(ids: list[str]) -> dict[str, Any]:
    """Every workflow SUCCESS with the five fields set in its output and five recorded steps."""
    errors: list[str] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        statuses = await DBOS.list_workflows_async(workflow_ids=chunk, load_output=True)
        found = {status.workflow_id: status for status in statuses}
        for workflow_id in chunk:
            status = found.get(workflow_id)
            if status is None:
                errors.append(f"{workflow_id}: not in the system database")
                continue
            if status.status != "SUCCESS":
                errors.append(f"{workflow_id}: status {status.status}")
            output = status.output if isinstance(status.output, dict) else {}
            unset = [name for name in STEP_FIELDS if output.get(name) is not True]
            if unset:
                errors.append(f"{workflow_id}: fields not set {unset}")
    for workflow_id in ids:
        steps = await DBOS.list_workflow_steps_async(workflow_id, load_output=False)
        if len(steps) != len(STEP_FIELDS):
            errors.append(f"{workflow_id}: {len(steps)} recorded steps")
    return {
        "checked": len(ids),
        "ok": not errors,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


async def run_dbos(
    backend: str,
    *,
    workflows: int,
    concurrency: int,
    warmup: int,
    postgres_url: str,
    pool_size: int,
) -> dict[str, Any]:
    """One complete W5 run of DBOS on ``backend``; returns its numbers."""
    async with system_database(backend, postgres_url) as (url, store):
        config: DBOSConfig = {
            "name": "w5-bench",
            "system_database_url": url,
            "sys_db_pool_size": pool_size,
            "log_level": "WARNING",
            "application_version": "w5",
        }
        DBOS(config=config)
        try:
            DBOS.launch()
            counter = WriteCommitCounter()

            async def run_one(workflow_id: str) -> None:
                with SetWorkflowID(workflow_id):
                    result = await w5_workflow(initial_order(workflow_id))
                if not all(result.get(name) is True for name in STEP_FIELDS):
                    raise RuntimeError(f"DBOS workflow {workflow_id} returned {result!r:.200}")

            measured, monitor, all_ids = await warm_then_measure(
                run_one,
                warmup=warmup,
                workflows=workflows,
                concurrency=concurrency,
                reset_counters=counter.reset,
            )
            writes = {"write_commits": counter.write_commits, "transactions": counter.transactions}
            verification = await verify(all_ids)
        finally:
            DBOS.destroy()

    return {
        "engine": "dbos",
        "backend": backend,
        **measured.summary(),
        **monitor.summary(),
        "commits_per_wf": round(writes["write_commits"] / workflows, 3),
        "transactions_per_wf": round(writes["transactions"] / workflows, 3),
        "writes": writes,
        "warmup": warmup,
        "store": {**store, "sys_db_pool_size": pool_size},
        "dbos_version": importlib.metadata.version("dbos"),
        "verification": verification,
    }
