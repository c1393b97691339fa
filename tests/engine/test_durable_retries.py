"""Durable retries: each failed attempt that will be retried is committed (count and time of
the next attempt) before the wait; a long wait does not hold the process — the run waits with
``retry_at`` and a later ``next_step`` (another process's) goes on counting from there."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from ruvon import WorkflowStatus
from ruvon.errors import WorkflowStateError
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import STEPS, ConfigDir, audit_types, workflow
from tests.support.order_steps import CALLS


@pytest.fixture
def retrying(config: ConfigDir) -> ConfigDir:
    for name, delay in (("Quick", 0.0), ("Patient", 0.3)):
        config.write(
            name,
            workflow(
                name,
                f"""
                - name: Flaky
                  function: {STEPS}.flaky_until_third
                  retry_policy:
                    max_attempts: 3
                    delay_seconds: {delay}
                    backoff_multiplier: 1
                """,
            ),
        )
    return config


async def test_every_failed_attempt_is_committed_before_the_next(
    retrying: ConfigDir, persistence: PersistenceProvider
) -> None:
    wf = await retrying.builder(persistence).create_workflow("Quick", {"order_id": "R1"})
    await wf.next_step()

    assert wf.status is WorkflowStatus.COMPLETED
    assert CALLS[wf.id] == [1, 2, 3]
    types = await audit_types(persistence, wf.id)
    assert types.count("STEP_RETRY_SCHEDULED") == 2
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert "retries" not in stored.progress  # cleared with the step's commit
    assert wf.retry_at is None


async def test_a_long_backoff_parks_the_run_and_another_process_goes_on_counting(
    retrying: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = retrying.builder(persistence, retry_park_after_seconds=0.2)
    wf = await builder.create_workflow("Patient", {"order_id": "R2"})
    await wf.next_step()  # attempt 1 fails; attempt 2 is 0.3 s away: the call returns

    assert wf.status is WorkflowStatus.ACTIVE
    assert CALLS[wf.id] == [1]
    assert wf.retry_at is not None
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert stored.progress["retries"]["Flaky"]["attempts"] == 1

    elsewhere = await retrying.builder(persistence, retry_park_after_seconds=0.2).load_workflow(
        wf.id
    )
    assert elsewhere.retry_at == wf.retry_at  # the wake-up time survives a reload
    version = elsewhere.version
    with pytest.raises(WorkflowStateError, match="waits until"):
        await elsewhere.next_step()  # too early: refused, nothing changed
    assert (await persistence.load_workflow(wf.id)).version == version  # type: ignore[union-attr]

    for _ in range(3):  # attempt 2 (fails, parks again), then attempt 3 (succeeds)
        due = elsewhere.retry_at
        assert due is not None
        await asyncio.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
        await elsewhere.next_step()
        if elsewhere.status is WorkflowStatus.COMPLETED:
            break
    assert elsewhere.status is WorkflowStatus.COMPLETED
    assert CALLS[wf.id] == [1, 2, 3]  # counted on from the committed attempts, not from 1


async def test_the_last_attempt_fails_the_step_and_a_retry_starts_counting_again(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    config.write(
        "Doomed",
        workflow(
            "Doomed",
            f"""
            - name: Charge
              function: {STEPS}.always_fails
              retry_policy: {{max_attempts: 2, delay_seconds: 0}}
            """,
        ),
    )
    wf = await config.builder(persistence).create_workflow("Doomed", {"order_id": "R3"})
    with pytest.raises(RuntimeError):
        await wf.next_step()
    assert wf.status is WorkflowStatus.FAILED
    assert CALLS[wf.id] == [1, 2]
    stored = await persistence.load_workflow(wf.id)
    assert stored is not None
    assert "retries" not in stored.progress

    await wf.retry()
    with pytest.raises(RuntimeError):
        await wf.next_step()
    assert CALLS[wf.id] == [1, 2, 1, 2]
