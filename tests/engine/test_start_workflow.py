"""``start_workflow`` (``create_workflow(..., start=True)``): the row is stored with the run's
lease, and the first call runs at once under it — no claim of its own, one write fewer than
``create_workflow`` followed by ``next_step``; the last commit releases the lease."""

from __future__ import annotations

from typing import Any

import pytest

from ruvon import WorkflowLeasedError, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import STEPS, ConfigDir, audit_types, workflow


class Claims:
    """Counts a store's lease claims (wraps the instance's method)."""

    def __init__(self, store: PersistenceProvider) -> None:
        self.count = 0
        claim = store.claim_lease

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await claim(*args, **kwargs)

        store.claim_lease = counted  # type: ignore[method-assign]


@pytest.fixture
def chained(config: ConfigDir) -> ConfigDir:
    steps = f"""
    - name: A
      function: {STEPS}.mark
      automate_next: true
    - name: B
      function: {STEPS}.mark
      automate_next: true
    - name: C
      function: {STEPS}.mark
    """
    config.write("Chained", workflow("Chained", steps))
    return config


async def test_start_runs_the_first_call_without_a_claim(
    chained: ConfigDir, persistence: PersistenceProvider
) -> None:
    claims = Claims(persistence)
    run = await chained.builder(persistence).start_workflow("Chained", {"order_id": "S1"})

    assert run.status is WorkflowStatus.COMPLETED
    assert run.state.visited == ["A", "B", "C"]
    assert claims.count == 0
    stored = await persistence.load_workflow(run.id)
    assert stored is not None
    assert stored.version == 4  # the create, then one commit per step
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)  # released
    assert (await audit_types(persistence, run.id))[-1] == "WORKFLOW_COMPLETED"


async def test_create_then_next_step_claims_once(
    chained: ConfigDir, persistence: PersistenceProvider
) -> None:
    claims = Claims(persistence)
    run = await chained.builder(persistence).create_workflow("Chained", {"order_id": "S2"})
    stored = await persistence.load_workflow(run.id)
    assert stored is not None and stored.lease_owner is None  # created free
    await run.next_step()

    assert run.status is WorkflowStatus.COMPLETED
    assert claims.count == 1
    assert run.version == 5  # the create, the claim, one commit per step


async def test_a_started_run_is_held_until_its_call_ends(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    config.write(
        "Review",
        workflow(
            "Review",
            f"""
            - name: Mark
              function: {STEPS}.mark
              automate_next: true
            - name: Review
              function: {STEPS}.pause_for_review
            """,
        ),
    )
    builder = config.builder(persistence)
    started = await builder.start_workflow("Review", {"order_id": "S3"}, actor="mia")
    assert started.status is WorkflowStatus.PAUSED
    stored = await persistence.load_workflow(started.id)
    assert stored is not None and stored.lease_owner is None  # the wait released it

    # While a driver holds the lease, nobody else runs the run.
    other = await builder.load_workflow(started.id)
    grant = await persistence.claim_lease(started.id, other.version, "someone-else", 30)
    assert grant.version == other.version + 1
    reloaded = await builder.load_workflow(started.id)
    with pytest.raises(WorkflowLeasedError, match="someone-else"):
        await reloaded.next_step({"approved": True})
    assert reloaded.status is WorkflowStatus.PAUSED  # nothing ran
    audit = [e for e in await persistence.get_audit_log(started.id) if e.user_id == "mia"]
    assert audit  # the actor of the first call is recorded


async def test_an_existing_idempotent_run_is_returned_not_driven(
    chained: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = chained.builder(persistence)
    first = await builder.create_workflow("Chained", {"order_id": "S4"}, idempotency_key="k-S4")
    again = await builder.start_workflow("Chained", {"order_id": "S4"}, idempotency_key="k-S4")
    assert again.id == first.id
    assert again.status is WorkflowStatus.ACTIVE and again.state.visited == []
