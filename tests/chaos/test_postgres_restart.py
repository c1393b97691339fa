"""PostgreSQL restarting while workflows run: calls fail with a clear ``PersistenceError`` (no
hang, no half-written step), the pool reconnects by itself, and every interrupted workflow is
driven on to completion afterwards; no committed step runs again, no workflow is lost.

200 workflows of five ``automate_next`` steps run 50 at a time in this process. Each step
appends ``<workflow id> <step> <run id>`` to a side-effect file, awaits 0.2 s (so that steps
are in flight) and returns its run id into the state: the state says which run of each
step was committed. Once 150 steps have started (counted in the file, not guessed from time),
the server is restarted (``pg_ctlcluster ... restart``, fast mode: open connections are
terminated, statements in flight fail) while the drivers go on. A probe meanwhile asks the
provider for a workflow every 50 ms: while the server is away, it must fail quickly with a
``PersistenceError`` naming PostgreSQL. After the restart the same provider (the same pool) is
used to drive on every workflow that did not complete — reloading it, and waiting out a lease
that a failed call left behind.

Two runs: commits ride out the restart (the default ``commit_retry_seconds``: a commit whose
connection was lost is retried, recognised by its commit token if it went through), and
commits fail at once (``commit_retry_seconds=0``: the steps whose commit failed run again).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.errors import ConcurrencyConflictError, PersistenceError, WorkflowLeasedError
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from tests.chaos.support import STEPS, ensure_running, restart_command, runs

pytestmark = [pytest.mark.postgres, pytest.mark.exclusive]  # it restarts the shared server
logger = logging.getLogger(__name__)

WORKFLOWS = 200
AT_A_TIME = 50
RESTART_AFTER = 150
"""Step runs logged before the restart starts (of 1000 at least)."""
CALL_TIMEOUT = 60.0
"""Bound of every call of the test: a call that takes longer hangs."""
DRIVE_ON_FOR = 45.0
"""How long the workflows may take to be driven on after the restart."""


@pytest.fixture
async def restartable(postgres_url: str) -> AsyncIterator[list[str]]:
    """The command restarting the test server; the server runs again after the test."""
    command = restart_command(postgres_url)
    try:
        yield command
    finally:
        await asyncio.to_thread(ensure_running, postgres_url)


def _clear(error: BaseException) -> bool:
    """A failure the caller can act on: a plain PersistenceError (not a version conflict) that
    says PostgreSQL could not be reached, with no driver exception chained to it."""
    text = str(error)
    return (
        type(error) is PersistenceError
        and "PostgreSQL" in text
        and "Cannot reach" in text
        and error.__cause__ is None
        and error.__suppress_context__
    )


@pytest.mark.parametrize(
    "commit_retry_seconds",
    [
        pytest.param(None, id="commits-ride-out-the-restart"),
        pytest.param(0.0, id="commits-fail-at-once"),
    ],
)
@pytest.mark.timeout(150)
async def test_postgres_restart_mid_run(
    postgres_url: str,
    postgres_schema: str,
    chaos_dir: Path,
    restartable: list[str],
    commit_retry_seconds: float | None,
) -> None:
    log = chaos_dir.parent / "side_effects"
    options: dict[str, Any] = {}
    if commit_retry_seconds is not None:
        options["commit_retry_seconds"] = commit_retry_seconds
    provider = PostgresPersistenceProvider(
        postgres_url, schema=postgres_schema, pool_min_size=2, pool_max_size=10, **options
    )
    builder = WorkflowBuilder(
        config_dir=chaos_dir,
        persistence_provider=provider,
        lease_seconds=2.0,
        heartbeat_interval_seconds=1.0,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    drivers: list[asyncio.Future[None]] = []
    try:
        ids: dict[int, str] = {}
        failures: list[tuple[str, BaseException]] = []

        # -- the run, and the restart in the middle of it ----------------------------------
        gate = asyncio.Semaphore(AT_A_TIME)
        active = 0  # drivers inside the gate

        async def drive(number: int) -> None:
            nonlocal active
            async with gate:
                active += 1
                what = "create"
                try:
                    workflow = await asyncio.wait_for(
                        builder.create_workflow(
                            "Chaos", {"n": number}, idempotency_key=f"chaos-{number}"
                        ),
                        CALL_TIMEOUT,
                    )
                    ids[number] = workflow.id
                    what = "next_step"
                    await asyncio.wait_for(workflow.next_step(), CALL_TIMEOUT)
                except PersistenceError as exc:
                    failures.append((what, exc))
                finally:
                    active -= 1

        await provider.initialize()
        pool = provider.pool
        drivers += [asyncio.ensure_future(drive(number)) for number in range(WORKFLOWS)]

        while len(runs(log)) < RESTART_AFTER:
            assert loop.time() - started < CALL_TIMEOUT, "the workflows never got going"
            assert not all(task.done() for task in drivers), "every driver ended early"
            await asyncio.sleep(0.01)
        restart_at = loop.time()
        restart = await asyncio.create_subprocess_exec(
            *restartable, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        waited = asyncio.ensure_future(restart.communicate())
        probes: list[tuple[float, BaseException | None]] = []
        in_flight: int | None = None  # drivers mid-way when the probe first saw the outage
        outage: list[float] = []
        while not waited.done():
            assert loop.time() - restart_at < CALL_TIMEOUT, f"{restartable} hangs"
            asked = loop.time()
            try:
                await asyncio.wait_for(provider.load_workflow("no-such-workflow"), CALL_TIMEOUT)
                outcome: BaseException | None = None
            except PersistenceError as exc:
                outcome = exc
                in_flight = active if in_flight is None else in_flight
                outage.append(loop.time())
            probes.append((loop.time() - asked, outcome))
            await asyncio.wait({waited}, timeout=0.05)
        out, err = await waited
        assert restart.returncode == 0, f"{restartable} failed: {out!r} {err!r}"
        restarted_in = loop.time() - restart_at

        outcomes = await asyncio.wait_for(
            asyncio.gather(*drivers, return_exceptions=True), 2 * CALL_TIMEOUT
        )
        escaped = [outcome for outcome in outcomes if outcome is not None]
        assert not escaped, f"calls failed with something else than PersistenceError: {escaped}"
        first_pass = loop.time() - started

        # -- what the outage looked like to the callers ------------------------------------
        down = [(took, error) for took, error in probes if error is not None]
        assert down, "the probe never saw the server away"
        assert in_flight, "no workflow was in flight when the server went away"
        assert all(took < 5.0 for took, _ in down), f"slow failures: {[t for t, _ in down]}"
        unclear = [error for _, error in down if not _clear(error)]
        unclear += [error for _, error in failures if not _clear(error)]
        assert not unclear, f"unclear errors: {[f'{type(e).__name__}: {e}' for e in unclear]}"
        assert not any(isinstance(error, ConcurrencyConflictError) for _, error in failures)

        # -- driving on, with the same provider: its pool reconnected by itself ------------
        assert provider.pool is pool
        leased: Counter[str] = Counter()

        async def drive_on(number: int) -> None:
            async with gate:
                deadline = loop.time() + DRIVE_ON_FOR
                while True:
                    try:
                        if number not in ids:  # its create failed: the key tells if it went through
                            workflow = await asyncio.wait_for(
                                builder.create_workflow(
                                    "Chaos", {"n": number}, idempotency_key=f"chaos-{number}"
                                ),
                                CALL_TIMEOUT,
                            )
                            ids[number] = workflow.id
                        else:
                            workflow = await asyncio.wait_for(
                                builder.load_workflow(ids[number]), CALL_TIMEOUT
                            )
                        if workflow.status is WorkflowStatus.COMPLETED:
                            return
                        await asyncio.wait_for(workflow.next_step(), CALL_TIMEOUT)
                        if workflow.status is WorkflowStatus.COMPLETED:
                            return
                    except WorkflowLeasedError:
                        # A call that failed in the outage could not release its lease.
                        leased[ids[number]] += 1
                        await asyncio.sleep(0.25)
                    assert loop.time() < deadline, f"workflow {number} was never completed"

        await asyncio.wait_for(
            asyncio.gather(*(drive_on(number) for number in range(WORKFLOWS))),
            DRIVE_ON_FOR + CALL_TIMEOUT,
        )
        assert provider.pool is pool

        # -- nothing lost, nothing committed twice, nothing half-written -------------------
        rows = await provider.list_workflows(workflow_type="Chaos", limit=10 * WORKFLOWS)
        assert len(rows) == WORKFLOWS
        assert {row.idempotency_key for row in rows} == {f"chaos-{n}" for n in range(WORKFLOWS)}
        assert {row.id for row in rows} == set(ids.values())
        assert {row.status for row in rows} == {WorkflowStatus.COMPLETED.value}

        last_run: dict[tuple[str, str], str] = {}
        runs_of: Counter[tuple[str, str]] = Counter()
        for workflow_id, step, run_id in runs(log):
            last_run[workflow_id, step] = run_id
            runs_of[workflow_id, step] += 1
        assert {workflow_id for workflow_id, _ in last_run} == set(ids.values())
        audits = await asyncio.gather(
            *(provider.get_audit_log(row.id, event_type="STEP_EXECUTED") for row in rows)
        )
        for row, audit in zip(rows, audits, strict=True):
            executed: dict[str | None, list[Any]] = defaultdict(list)
            for entry in audit:
                executed[entry.step_name].append(entry.data["result"])
            assert set(executed) == set(STEPS), row.id
            for step in STEPS:
                committed = row.state[step]
                # The committed run is the step's last: nothing ran it after its commit.
                assert committed == last_run[row.id, step], (row.id, step)
                # Committed once, with its audit entry in the same transaction.
                assert executed[step] == [{step: committed}], (row.id, step)
        # A step ran again only where its commit failed (and said so): not where it rode out.
        reruns = sum(runs_of.values()) - WORKFLOWS * len(STEPS)
        lost_commits = sum("to commit workflow" in str(error) for _, error in failures)
        assert reruns <= lost_commits
        if commit_retry_seconds is None:  # ten seconds outlast the restart
            assert lost_commits == 0
        logger.info(
            f"chaos: {in_flight} workflows in flight when the server went away for "
            f"~{outage[-1] - outage[0]:.2f} s; the restart command took "
            f"{restarted_in:.1f} s; first pass {first_pass:.1f} s; {len(failures)} calls failed "
            f"({Counter(what for what, _ in failures)}); {len(down)} of {len(probes)} probes "
            f"failed; {len(leased)} runs waited out a lease; {reruns} uncommitted step runs "
            f"ran again; total {loop.time() - started:.1f} s"
        )
    finally:
        for task in drivers:  # only after a failure are some left
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)
        await builder.close()
