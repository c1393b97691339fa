"""W5 on Ruvon: a fresh store per backend, a warm-up, the measured run, then a correctness check.

Backends: ``memory``; ``sqlite`` (a file in a temporary directory, ``synchronous=NORMAL``, the
provider's default); ``sqlite-full`` (the same with ``synchronous=FULL``); ``postgres`` (a fresh
schema through the provider's ``schema=`` argument, dropped afterwards).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from w5.measure import warm_then_measure
from w5.steps import STEP_FIELDS, make_order

CONFIG_DIR = Path(__file__).resolve().parent / "config"
WORKFLOW_TYPE = "W5"
EXPECTED_AUDIT = ["WORKFLOW_STARTED", *["STEP_EXECUTED"] * len(STEP_FIELDS), "WORKFLOW_COMPLETED"]
RUVON_BACKENDS = ("memory", "sqlite", "sqlite-full", "postgres")


class CommitCounter:
    """Counts the provider's durable writes by wrapping the instance's two write methods.

    ``create_workflow``, ``claim_lease`` (the ``next_step`` call's lease on the run) and
    ``commit_workflow`` are the engine's only writes on W5's path; each call is one transaction
    (one commit) in the SQL providers.
    """

    def __init__(self, provider: PersistenceProvider) -> None:
        self.creates = 0
        self.claims = 0
        self.commits = 0
        self._wrap(provider, "create_workflow", "creates")
        self._wrap(provider, "claim_lease", "claims")
        self._wrap(provider, "commit_workflow", "commits")

    def _wrap(self, provider: PersistenceProvider, method: str, counter: str) -> None:
        original: Callable[..., Awaitable[Any]] = getattr(provider, method)

        @functools.wraps(original)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            setattr(self, counter, getattr(self, counter) + 1)
            return await original(*args, **kwargs)

        setattr(provider, method, counted)

    def reset(self) -> None:
        self.creates = self.claims = self.commits = 0

    @property
    def total(self) -> int:
        return self.creates + self.claims + self.commits


@contextlib.asynccontextmanager
async def ruvon_store(
    backend: str, *, postgres_url: str, pool_size: int
) -> AsyncIterator[tuple[PersistenceProvider, dict[str, Any]]]:
    """A fresh, initialized provider for ``backend`` and a description of it; removed after."""
    if backend == "memory":
        from ruvon.implementations.persistence.memory import MemoryPersistenceProvider

        provider: PersistenceProvider = MemoryPersistenceProvider()
        await provider.initialize()
        try:
            yield provider, {}
        finally:
            await provider.close()
    elif backend in ("sqlite", "sqlite-full"):
        from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider

        synchronous = "FULL" if backend == "sqlite-full" else "NORMAL"
        with tempfile.TemporaryDirectory(prefix="w5-ruvon-") as tmp:
            path = Path(tmp) / "w5.db"
            provider = SQLitePersistenceProvider(path, synchronous=synchronous)
            await provider.initialize()
            try:
                yield provider, {"sqlite_file": str(path), "synchronous": synchronous}
            finally:
                await provider.close()
    elif backend == "postgres":
        from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
        from w5 import pg

        schema = f"w5_ruvon_{uuid.uuid4().hex[:12]}"
        provider = PostgresPersistenceProvider(
            postgres_url, pool_min_size=min(10, pool_size), pool_max_size=pool_size, schema=schema
        )
        try:
            await provider.initialize()
            yield provider, {"schema": schema, "pool_max_size": pool_size}
        finally:
            await provider.close()
            await pg.drop_schema(postgres_url, schema)
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {RUVON_BACKENDS}")


def workflow_runner(provider: PersistenceProvider) -> Callable[[str], Awaitable[None]]:
    """A builder on ``provider`` and the coroutine function that runs one W5 workflow with it:
    start it (create it and run its first call, which chains all five steps), check that it
    completed."""
    builder = WorkflowBuilder(config_dir=CONFIG_DIR, persistence_provider=provider)
    builder.validate(WORKFLOW_TYPE)

    async def run_one(workflow_id: str) -> None:
        # Created with the run's lease and driven in the same call: automate_next chains all
        # five steps (create_workflow + next_step would claim the lease with one more write).
        workflow = await builder.start_workflow(
            WORKFLOW_TYPE, make_order(workflow_id), workflow_id=workflow_id
        )
        if workflow.status is not WorkflowStatus.COMPLETED:
            raise RuntimeError(f"workflow {workflow.id} ended {workflow.status.value}")

    return run_one


async def verify(provider: PersistenceProvider, ids: list[str]) -> dict[str, Any]:
    """Read every workflow back from the store: COMPLETED, all five fields set, and exactly the
    expected audit trail."""
    errors: list[str] = []
    for workflow_id in ids:
        record = await provider.load_workflow(workflow_id)
        if record is None:
            errors.append(f"{workflow_id}: not in the store")
            continue
        if record.status != WorkflowStatus.COMPLETED.value:
            errors.append(f"{workflow_id}: status {record.status}")
        unset = [name for name in STEP_FIELDS if record.state.get(name) is not True]
        if unset or len(record.state.get("items", [])) != 20:
            errors.append(f"{workflow_id}: fields not set {unset}")
        audit = await provider.get_audit_log(workflow_id, limit=1000)
        kinds = [event.event_type for event in audit]
        if kinds != EXPECTED_AUDIT:
            errors.append(f"{workflow_id}: audit {kinds}")
    stored = await provider.list_workflows(workflow_type=WORKFLOW_TYPE, limit=len(ids) + 1)
    if len(stored) != len(ids):
        errors.append(f"store holds {len(stored)} W5 workflows, expected {len(ids)}")
    return {
        "checked": len(ids),
        "ok": not errors,
        "errors": len(errors),
        "first_errors": errors[:5],
        "audit_entries_per_workflow": len(EXPECTED_AUDIT),
    }


async def run_ruvon(
    backend: str,
    *,
    workflows: int,
    concurrency: int,
    warmup: int,
    postgres_url: str,
    pool_size: int,
) -> dict[str, Any]:
    """One complete W5 run of Ruvon on ``backend``; returns its numbers."""
    async with ruvon_store(backend, postgres_url=postgres_url, pool_size=pool_size) as (
        provider,
        store,
    ):
        counter = CommitCounter(provider)
        run_one = workflow_runner(provider)
        measured, monitor, all_ids = await warm_then_measure(
            run_one,
            warmup=warmup,
            workflows=workflows,
            concurrency=concurrency,
            reset_counters=counter.reset,
        )
        writes = {"creates": counter.creates, "claims": counter.claims, "commits": counter.commits}
        verification = await verify(provider, all_ids)

    return {
        "engine": "ruvon",
        "backend": backend,
        **measured.summary(),
        **monitor.summary(),
        "commits_per_wf": round(counter.total / workflows, 3),
        "writes": writes,
        "warmup": warmup,
        "store": store,
        "verification": verification,
    }
