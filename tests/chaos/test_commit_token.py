"""A commit whose connection is lost is tried again on a new connection, and its commit token
tells the retry whether the lost try went through: a commit that did is reported as the
success it was (its new version), not as a version conflict with itself, and is written once.

The connection is really lost, at the worst moment, deterministically: the provider talks to
PostgreSQL through a small TCP proxy (:class:`~tests.chaos.support.CutProxy`) that lets the
commit statement through, waits until the server has answered it — ReadyForQuery after the
statement's CommandComplete, so its transaction has committed — and then closes the client's
connection instead of passing the answer on. The provider sees exactly what a server restart
between "commit sent" and "answer read" looks like (``ConnectionDoesNotExistError``); its
retry opens a new connection, finds its version moved on and the row carrying its token, and
returns the new version. (Calling ``_commit_one`` twice with the same job would test the token
check but not the lost connection; terminating the backend from another connection cannot be
timed between the commit and its answer.) The opposite cut — the statement never reaches the
server — must be written by the retry, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.errors import ConcurrencyConflictError, PersistenceError
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.providers.persistence import AuditEvent, WorkflowCommit
from tests.chaos.support import STEPS, CutProxy, runs, through
from tests.providers.test_persistence_compliance import load, make_record, make_update

pytestmark = pytest.mark.postgres

BATCH_MARK = "UPDATE workflow_executions AS w"
"""In the text of a group-commit batch statement (and of no single-commit statement)."""


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[CutProxy]:
    parts = urlsplit(postgres_url)
    cutter = CutProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await cutter.start()
    yield cutter
    await cutter.close()


async def _provider(
    url: str, schema: str, proxy: CutProxy, *, group_commit: bool
) -> tuple[PostgresPersistenceProvider, list[Any]]:
    """A provider on one connection through ``proxy``; the queries sent on that connection."""
    assert proxy.port is not None
    provider = PostgresPersistenceProvider(
        through(url, proxy.port),
        schema=schema,
        pool_min_size=1,
        pool_max_size=1,
        group_commit=group_commit,
        group_commit_concurrency=1,
    )
    await provider.initialize()
    queries: list[Any] = []
    async with provider.pool.acquire() as conn:
        conn.add_query_logger(queries.append)  # stays on this connection, not its successor
    return provider, queries


def _commit(workflow_id: str, version: int) -> WorkflowCommit:
    return WorkflowCommit(
        make_update(workflow_id, state={"at": version}),
        expected_version=version,
        audit=[AuditEvent("STEP_EXECUTED", step_name=f"step-{version}")],
    )


async def _commit_all(provider: PostgresPersistenceProvider, ids: list[str], version: int) -> Any:
    return await asyncio.wait_for(
        asyncio.gather(
            *(provider.commit_workflow(_commit(i, version)) for i in ids), return_exceptions=True
        ),
        30,
    )


@pytest.mark.parametrize(
    ("cut", "batch"),
    [
        pytest.param("after_reply", False, id="committed-then-lost"),
        pytest.param("after_reply", True, id="batch-committed-then-lost"),
        pytest.param("before_send", False, id="lost-before-sent"),
        pytest.param("before_send", True, id="batch-lost-before-sent"),
    ],
)
async def test_a_commit_whose_connection_is_lost_is_applied_once(
    postgres_url: str, postgres_schema: str, proxy: CutProxy, cut: str, batch: bool
) -> None:
    ids = ["wf-1", "wf-2", "wf-3"] if batch else ["wf-1"]
    provider, queries = await _provider(postgres_url, postgres_schema, proxy, group_commit=batch)
    try:
        for i in ids:
            await provider.create_workflow(make_record(i))
        # The same statement once before, so that the cut one is already prepared: the next
        # round trip is the execution itself.
        assert await _commit_all(provider, ids, 1) == [2] * len(ids)
        await asyncio.sleep(0)  # query loggers are called with call_soon
        assert (BATCH_MARK in queries[-1].query) is batch  # three commits, one statement
        connections = proxy.connections

        getattr(proxy, f"cut_{cut}")()
        outcomes = await _commit_all(provider, ids, 2)

        assert proxy.cut.is_set(), "the proxy never cut the connection"
        assert proxy.connections == connections + 1  # the retry's new connection
        if cut == "after_reply":  # the answer lost was the row of each commit
            assert proxy.dropped_rows == len(ids)
        assert not any(isinstance(outcome, ConcurrencyConflictError) for outcome in outcomes)
        assert outcomes == [3] * len(ids)
        for i in ids:
            stored = await load(provider, i)
            assert (stored.version, stored.state) == (3, {"at": 2})
            audit = await provider.get_audit_log(i, event_type="STEP_EXECUTED")
            assert [entry.step_name for entry in audit] == ["step-1", "step-2"]  # once each
        # The workflow goes on as usual from the version it was told.
        assert await _commit_all(provider, ids, 3) == [4] * len(ids)
    finally:
        await provider.close()


async def test_a_real_conflict_after_a_lost_connection_is_still_a_conflict(
    postgres_url: str, postgres_schema: str, proxy: CutProxy
) -> None:
    """The token recognises only the commit's own write: if another writer moved the row on
    while the connection was lost, the retry reports the conflict."""
    provider, _queries = await _provider(postgres_url, postgres_schema, proxy, group_commit=False)
    try:
        await provider.create_workflow(make_record("wf-1"))
        assert await _commit_all(provider, ["wf-1"], 1) == [2]
        # Another writer (straight to the server, not through the proxy) commits version 3
        # while the next commit, made at version 2 again, is lost before it is sent.
        other = PostgresPersistenceProvider(
            postgres_url, schema=postgres_schema, pool_min_size=1, pool_max_size=1
        )
        await other.initialize()
        try:
            assert await other.commit_workflow(_commit("wf-1", 2)) == 3
        finally:
            await other.close()
        proxy.cut_before_send()
        outcomes = await _commit_all(provider, ["wf-1"], 2)
        assert proxy.cut.is_set()
        assert isinstance(outcomes[0], ConcurrencyConflictError)
        assert (await load(provider, "wf-1")).version == 3
    finally:
        await provider.close()


# -- what a workflow's driver sees ------------------------------------------------------------


async def _cut_commit_of(step: str, log: Path, proxy: CutProxy) -> None:
    """Arm ``proxy`` once ``step`` has started (it is in flight for 0.2 s, and nothing else
    goes to the database meanwhile): the next statement executed is the step's commit."""
    deadline = asyncio.get_running_loop().time() + 30
    while step not in [name for _, name, _ in runs(log)]:
        assert asyncio.get_running_loop().time() < deadline, f"step {step} never started"
        await asyncio.sleep(0.01)
    proxy.cut_after_reply()


def _builder(
    url: str, schema: str, proxy: CutProxy, chaos_dir: Path, **options: Any
) -> WorkflowBuilder:
    assert proxy.port is not None
    provider = PostgresPersistenceProvider(
        through(url, proxy.port), schema=schema, pool_min_size=1, pool_max_size=1, **options
    )
    return WorkflowBuilder(
        config_dir=chaos_dir,
        persistence_provider=provider,
        lease_seconds=2.0,
        heartbeat_interval_seconds=1.0,
    )


async def test_a_step_whose_commit_answer_was_lost_is_committed_once(
    postgres_url: str, postgres_schema: str, proxy: CutProxy, chaos_dir: Path
) -> None:
    """The driver never notices: the commit's retry recognises its write, the chain goes on,
    every step ran once."""
    log = chaos_dir.parent / "side_effects"
    builder = _builder(postgres_url, postgres_schema, proxy, chaos_dir)
    try:
        workflow = await builder.create_workflow("Chaos", {})
        cut = asyncio.ensure_future(_cut_commit_of("s2", log, proxy))
        await asyncio.wait_for(workflow.next_step(), 30)
        await cut

        assert proxy.cut.is_set() and proxy.dropped_rows == 1
        assert workflow.status is WorkflowStatus.COMPLETED
        assert [name for _, name, _ in runs(log)] == list(STEPS)  # each ran once
        stored = await builder.load_workflow(workflow.id)
        audit = await stored.persistence.get_audit_log(workflow.id, event_type="STEP_EXECUTED")
        assert [entry.step_name for entry in audit] == list(STEPS)
        assert stored.state.s2 == runs(log)[1][2]
    finally:
        await builder.close()


async def test_a_step_commit_given_up_on_says_it_may_have_been_written(
    postgres_url: str, postgres_schema: str, proxy: CutProxy, chaos_dir: Path
) -> None:
    """Without retries (``commit_retry_seconds=0``) the driver gets a clear PersistenceError
    saying the commit may have been written — it was. The same object's next call is refused
    before the step runs again (its version is stale); the reloaded workflow goes on from the
    committed step."""
    log = chaos_dir.parent / "side_effects"
    builder = _builder(postgres_url, postgres_schema, proxy, chaos_dir, commit_retry_seconds=0)
    try:
        workflow = await builder.create_workflow("Chaos", {})
        cut = asyncio.ensure_future(_cut_commit_of("s2", log, proxy))
        with pytest.raises(PersistenceError, match="may or may not have been written") as caught:
            await asyncio.wait_for(workflow.next_step(), 30)
        await cut
        assert type(caught.value) is PersistenceError and caught.value.__cause__ is None
        assert "Cannot reach PostgreSQL" in str(caught.value)

        with pytest.raises(ConcurrencyConflictError):
            await workflow.next_step()
        assert [name for _, name, _ in runs(log)] == ["s1", "s2"]  # s2 did not run again

        reloaded = await builder.load_workflow(workflow.id)
        assert reloaded.current_step_name == "s3"
        assert reloaded.state.s2 == runs(log)[1][2]  # the run whose answer was lost
        await asyncio.wait_for(reloaded.next_step(), 30)
        assert reloaded.status is WorkflowStatus.COMPLETED
        assert [name for _, name, _ in runs(log)] == list(STEPS)
    finally:
        await builder.close()
