"""The lease part of the persistence contract (``LeaseStore``), checked on every provider
(memory, SQLite, PostgreSQL): a claim is one conditional write that names the driver, sets an
expiry on the store's clock and bumps the version; another owner's live lease refuses claims
and commits (writing nothing); renewals and releases are the owner's only and leave the version
alone; an expired lease is anybody's; ``get_expired_leases`` finds the runs whose driver died
before its first heartbeat; every commit stores a commit token.

Leases are made to expire by claiming them for a fraction of a second and waiting until the
stored end has passed: a wait for a known time, never a guess.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ruvon import ConcurrencyConflictError, WorkflowLeasedError, WorkflowNotFoundError
from ruvon.implementations.persistence import _sql
from ruvon.implementations.persistence._sql_leases import commit_refused
from ruvon.providers.leases import LeaseStore
from ruvon.providers.persistence import (
    AuditEvent,
    LeaseGrant,
    PersistenceProvider,
    WorkflowCommit,
    WorkflowRecord,
)
from tests.providers.test_persistence_compliance import is_utc, load, make_record, make_update

LONG = 30.0
"""A lease that outlives every test."""
SHORT = 0.05
"""A lease that runs out almost at once (then waited for with :func:`outlive`)."""


async def created(store: PersistenceProvider, workflow_id: str = "wf-1", **changes: Any) -> str:
    """A new workflow (version 1, no lease); its id."""
    record = await store.create_workflow(make_record(workflow_id, **changes))
    assert (record.version, record.lease_owner, record.lease_expires_at) == (1, None, None)
    return record.id


async def outlive(grant: LeaseGrant | datetime) -> None:
    """Wait until a lease's stated end (the store's clock: this machine's) has passed."""
    end = grant.expires_at if isinstance(grant, LeaseGrant) else grant
    wait = (end - datetime.now(timezone.utc)).total_seconds()
    assert wait < 5, f"the lease still runs for {wait:.2f} s"
    await asyncio.sleep(max(wait, 0.0) + 0.05)


async def entries(store: PersistenceProvider, workflow_id: str) -> list[str]:
    return [event.event_type for event in await store.get_audit_log(workflow_id)]


def test_every_store_is_a_lease_store(store: PersistenceProvider) -> None:
    assert isinstance(store, LeaseStore)


# -- claim ---------------------------------------------------------------------------------


async def test_a_claim_on_a_free_row_names_the_owner_and_bumps_the_version(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    before = await load(store, workflow_id)

    grant = await store.claim_lease(workflow_id, 1, "driver-a", LONG)

    assert grant.version == 2
    assert is_utc(grant.expires_at) and is_utc(grant.updated_at)
    held = grant.expires_at - grant.updated_at
    assert timedelta(seconds=LONG - 1) < held <= timedelta(seconds=LONG + 1)
    stored = await load(store, workflow_id)
    assert stored.version == 2
    assert (stored.lease_owner, stored.lease_expires_at) == ("driver-a", grant.expires_at)
    assert stored.updated_at == grant.updated_at
    assert before.updated_at is not None and stored.updated_at >= before.updated_at
    # Only the lease, the version and the time changed.
    unchanged = ("status", "state", "current_step", "current_step_index", "metadata")
    assert all(getattr(stored, name) == getattr(before, name) for name in unchanged)


async def test_another_owner_is_refused_while_the_lease_is_live_and_nothing_is_written(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    grant = await store.claim_lease(workflow_id, 1, "driver-a", LONG)
    before = await load(store, workflow_id)

    with pytest.raises(WorkflowLeasedError) as refused:
        await store.claim_lease(workflow_id, 2, "driver-b", LONG)

    error = refused.value
    assert isinstance(error, ConcurrencyConflictError)  # callers catching conflicts see it too
    assert (error.workflow_id, error.expected_version) == (workflow_id, 2)
    assert (error.owner, error.expires_at) == ("driver-a", grant.expires_at)
    assert "driver-a" in str(error) and grant.expires_at.isoformat() in str(error)
    assert await load(store, workflow_id) == before


async def test_the_same_owner_may_claim_again(store: PersistenceProvider) -> None:
    workflow_id = await created(store)
    first = await store.claim_lease(workflow_id, 1, "driver-a", LONG)

    again = await store.claim_lease(workflow_id, 2, "driver-a", LONG)

    assert again.version == 3
    assert again.expires_at >= first.expires_at
    stored = await load(store, workflow_id)
    assert (stored.version, stored.lease_owner) == (3, "driver-a")
    assert stored.lease_expires_at == again.expires_at


async def test_a_stale_version_is_a_conflict_not_a_lease(store: PersistenceProvider) -> None:
    workflow_id = await created(store)
    await store.commit_workflow(WorkflowCommit(make_update(workflow_id), 1))  # version 2
    before = await load(store, workflow_id)

    for owner in ("driver-a", "driver-b"):
        with pytest.raises(ConcurrencyConflictError) as refused:
            await store.claim_lease(workflow_id, 1, owner, LONG)
        assert not isinstance(refused.value, WorkflowLeasedError)
        assert refused.value.expected_version == 1
    assert await load(store, workflow_id) == before


async def test_a_claim_of_a_missing_workflow(store: PersistenceProvider) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await store.claim_lease("nobody", 1, "driver-a", LONG)


async def test_an_expired_lease_can_be_claimed_by_another_owner(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    grant = await store.claim_lease(workflow_id, 1, "driver-a", SHORT)
    await outlive(grant)

    taken = await store.claim_lease(workflow_id, 2, "driver-b", LONG)

    assert taken.version == 3
    stored = await load(store, workflow_id)
    assert (stored.lease_owner, stored.lease_expires_at) == ("driver-b", taken.expires_at)
    with pytest.raises(WorkflowLeasedError) as refused:  # and now it is driver-b's
        await store.claim_lease(workflow_id, 3, "driver-a", LONG)
    assert refused.value.owner == "driver-b"


# -- renew and release ---------------------------------------------------------------------


async def test_renew_extends_only_the_owners_lease_without_a_new_version(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    grant = await store.claim_lease(workflow_id, 1, "driver-a", 5.0)
    before = await load(store, workflow_id)

    assert await store.renew_lease(workflow_id, "driver-b", LONG) is None
    assert await store.renew_lease("nobody", "driver-a", LONG) is None
    assert await load(store, workflow_id) == before

    renewed = await store.renew_lease(workflow_id, "driver-a", LONG)

    assert renewed is not None and is_utc(renewed)
    assert renewed > grant.expires_at
    stored = await load(store, workflow_id)
    assert stored.lease_expires_at == renewed and stored.lease_owner == "driver-a"
    assert (stored.version, stored.updated_at) == (before.version, before.updated_at)


async def test_release_only_by_the_owner(store: PersistenceProvider) -> None:
    workflow_id = await created(store)
    await store.claim_lease(workflow_id, 1, "driver-a", LONG)
    before = await load(store, workflow_id)

    assert await store.release_lease(workflow_id, "driver-b") is False
    assert await store.release_lease("nobody", "driver-a") is False
    assert await load(store, workflow_id) == before

    assert await store.release_lease(workflow_id, "driver-a") is True

    stored = await load(store, workflow_id)
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    assert stored.version == before.version
    assert await store.release_lease(workflow_id, "driver-a") is False
    assert await store.renew_lease(workflow_id, "driver-a", LONG) is None
    # Free again: anybody may claim it.
    assert (await store.claim_lease(workflow_id, 2, "driver-b", LONG)).version == 3


# -- commits under a lease -----------------------------------------------------------------


async def test_a_commit_by_anyone_but_the_holder_is_refused_while_the_lease_is_live(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    grant = await store.claim_lease(workflow_id, 1, "driver-a", LONG)
    before = await load(store, workflow_id)
    audit_before = await entries(store, workflow_id)
    update = make_update(workflow_id)

    for holder in ("driver-b", None):
        commit = WorkflowCommit(update, 2, audit=[AuditEvent("STEP_EXECUTED")], lease_holder=holder)
        with pytest.raises(WorkflowLeasedError) as refused:
            await store.commit_workflow(commit)
        assert (refused.value.owner, refused.value.expires_at) == ("driver-a", grant.expires_at)

    assert await load(store, workflow_id) == before
    assert await entries(store, workflow_id) == audit_before

    # The holder's commit goes through, and keeps the lease it writes.
    kept = make_update(workflow_id, lease_owner="driver-a", lease_expires_at=grant.expires_at)
    assert await store.commit_workflow(WorkflowCommit(kept, 2, lease_holder="driver-a")) == 3
    stored = await load(store, workflow_id)
    assert (stored.version, stored.state) == (3, update.state)
    assert (stored.lease_owner, stored.lease_expires_at) == ("driver-a", grant.expires_at)
    with pytest.raises(WorkflowLeasedError):  # still live for the others
        await store.commit_workflow(WorkflowCommit(update, 3, lease_holder="driver-b"))


async def test_a_commit_without_a_lease_owner_releases_the_lease(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    await store.claim_lease(workflow_id, 1, "driver-a", LONG)

    released = make_update(workflow_id, lease_owner=None, lease_expires_at=None)
    assert await store.commit_workflow(WorkflowCommit(released, 2, lease_holder="driver-a")) == 3

    stored = await load(store, workflow_id)
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    # Nobody holds it now: a commit of anybody (or of nobody) goes through.
    update = make_update(workflow_id, current_step_index=2)
    assert await store.commit_workflow(WorkflowCommit(update, 3, lease_holder="driver-b")) == 4
    assert await store.commit_workflow(WorkflowCommit(update, 4)) == 5


async def test_a_commit_goes_through_once_the_lease_expired(store: PersistenceProvider) -> None:
    workflow_id = await created(store)
    grant = await store.claim_lease(workflow_id, 1, "driver-a", SHORT)
    await outlive(grant)

    update = make_update(workflow_id)
    commit = WorkflowCommit(update, 2, audit=[AuditEvent("STEP_EXECUTED")], lease_holder=None)
    assert await store.commit_workflow(commit) == 3

    stored = await load(store, workflow_id)
    assert (stored.version, stored.state) == (3, update.state)
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    assert (await entries(store, workflow_id))[-1] == "STEP_EXECUTED"


async def test_a_commit_at_a_stale_version_under_a_foreign_lease_is_a_conflict(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    await store.claim_lease(workflow_id, 1, "driver-a", LONG)  # version 2
    before = await load(store, workflow_id)

    with pytest.raises(ConcurrencyConflictError):
        await store.commit_workflow(
            WorkflowCommit(make_update(workflow_id), 1, lease_holder="driver-b")
        )
    assert await load(store, workflow_id) == before


# -- at the same time ----------------------------------------------------------------------


async def test_of_concurrent_claims_exactly_one_wins(store: PersistenceProvider) -> None:
    workflow_id = await created(store)
    owners = [f"driver-{n}" for n in range(5)]

    outcomes = await asyncio.gather(
        *(store.claim_lease(workflow_id, 1, owner, LONG) for owner in owners),
        return_exceptions=True,
    )

    pairs = zip(owners, outcomes, strict=True)
    grants = [(owner, o) for owner, o in pairs if isinstance(o, LeaseGrant)]
    assert len(grants) == 1, outcomes
    winner, grant = grants[0]
    assert grant.version == 2
    refusals = [o for o in outcomes if not isinstance(o, LeaseGrant)]
    assert all(isinstance(o, ConcurrencyConflictError) for o in refusals), refusals
    stored = await load(store, workflow_id)
    assert (stored.version, stored.lease_owner) == (2, winner)


async def test_concurrent_claims_and_commits_each_get_their_own_outcome(
    store: PersistenceProvider,
) -> None:
    # Written at once, they may share a transaction (group commit): each outcome is its own.
    leased, stale, free, claimed, taken = [
        await created(store, name) for name in ("leased", "stale", "free", "claimed", "taken")
    ]
    await store.claim_lease(leased, 1, "driver-a", LONG)  # version 2
    await store.claim_lease(taken, 1, "driver-a", LONG)  # version 2

    outcomes = await asyncio.gather(
        store.commit_workflow(WorkflowCommit(make_update(leased), 2, lease_holder="driver-b")),
        store.commit_workflow(WorkflowCommit(make_update(stale), 7)),
        store.commit_workflow(
            WorkflowCommit(make_update(free), 1, audit=[AuditEvent("STEP_EXECUTED")])
        ),
        store.claim_lease(claimed, 1, "driver-b", LONG),
        store.claim_lease(taken, 2, "driver-b", LONG),
        return_exceptions=True,
    )

    refused, conflict, committed, grant, denied = outcomes
    assert isinstance(refused, WorkflowLeasedError) and refused.owner == "driver-a"
    assert type(conflict) is ConcurrencyConflictError
    assert committed == 2
    assert isinstance(grant, LeaseGrant) and grant.version == 2
    assert isinstance(denied, WorkflowLeasedError) and denied.owner == "driver-a"
    assert (await load(store, leased)).state == make_record(leased).state
    assert (await load(store, free)).state == make_update(free).state
    assert await entries(store, free) == ["STEP_EXECUTED"]
    assert (await load(store, claimed)).lease_owner == "driver-b"
    assert (await load(store, taken)).lease_owner == "driver-a"


# -- expired leases ------------------------------------------------------------------------


async def test_get_expired_leases_finds_drivers_that_died_before_their_first_heartbeat(
    store: PersistenceProvider,
) -> None:
    expired = await created(store, "expired")
    waiting_task = await created(store, "waiting-task", status="PENDING_ASYNC")
    beating = await created(store, "beating")
    completed = await created(store, "completed")
    live = await created(store, "live")
    free = await created(store, "free")
    grants = {
        workflow_id: await store.claim_lease(workflow_id, 1, "dead-driver", SHORT)
        for workflow_id in (expired, waiting_task, beating, completed)
    }
    await store.claim_lease(live, 1, "live-driver", LONG)
    await store.upsert_heartbeat(beating, "dead-driver", "validate")
    # Completed under its lease, which the last commit kept (it expires on its own).
    done = make_update(
        completed,
        status="COMPLETED",
        lease_owner="dead-driver",
        lease_expires_at=grants[completed].expires_at,
    )
    await store.commit_workflow(WorkflowCommit(done, 2, lease_holder="dead-driver"))
    await outlive(max(grant.expires_at for grant in grants.values()))

    found = await store.get_expired_leases(0)

    assert sorted(record.id for record in found) == sorted([expired, waiting_task])
    changed = [record.updated_at for record in found if record.updated_at is not None]
    assert len(changed) == len(found) and changed == sorted(changed)  # oldest change first
    record = next(record for record in found if record.id == expired)
    assert record == await load(store, expired)  # the whole record
    assert (record.lease_owner, record.lease_expires_at) == (
        "dead-driver",
        grants[expired].expires_at,
    )
    assert [r.id for r in await store.get_expired_leases(0, limit=1)] == [found[0].id]
    # Changed less than an hour ago: not stale for a threshold of an hour.
    assert await store.get_expired_leases(3600) == []
    assert free not in {record.id for record in found}


async def test_an_expired_lease_stops_counting_once_the_run_moves_on(
    store: PersistenceProvider,
) -> None:
    workflow_id = await created(store)
    grant = await store.claim_lease(workflow_id, 1, "dead-driver", SHORT)
    await outlive(grant)
    assert [record.id for record in await store.get_expired_leases(0)] == [workflow_id]

    taken = await store.claim_lease(workflow_id, 2, "driver-b", LONG)
    assert await store.get_expired_leases(0) == []  # live again
    released = make_update(workflow_id, lease_owner=None, lease_expires_at=None)
    await store.commit_workflow(WorkflowCommit(released, taken.version, lease_holder="driver-b"))
    assert await store.get_expired_leases(0) == []  # nobody holds it


# -- commit tokens -------------------------------------------------------------------------


async def test_every_commit_stores_a_token_of_its_own(store: PersistenceProvider) -> None:
    workflow_id = await created(store)

    await store.commit_workflow(WorkflowCommit(make_update(workflow_id), 1))
    first = (await load(store, workflow_id)).commit_token
    await store.commit_workflow(WorkflowCommit(make_update(workflow_id), 2))
    second = (await load(store, workflow_id)).commit_token

    assert first is not None and second is not None and first != second

    named = make_update(workflow_id, commit_token="commit-3-of-wf-1")
    assert await store.commit_workflow(WorkflowCommit(named, 3)) == 4
    assert (await load(store, workflow_id)).commit_token == "commit-3-of-wf-1"


async def test_a_records_update_asks_for_a_new_token(store: PersistenceProvider) -> None:
    workflow_id = await created(store)
    await store.commit_workflow(WorkflowCommit(make_update(workflow_id), 1))
    record: WorkflowRecord = await load(store, workflow_id)
    assert record.as_update().commit_token is None

    await store.commit_workflow(WorkflowCommit(record.as_update(), record.version))

    token = (await load(store, workflow_id)).commit_token
    assert token is not None and token != record.commit_token


# -- how the SQL stores tell why a write matched nothing -----------------------------------


@pytest.mark.parametrize("dialect", [_sql.SQLITE, _sql.POSTGRES], ids=lambda d: d.name)
def test_commit_refused_tells_a_lost_success_from_a_refusal(dialect: _sql.Dialect) -> None:
    until = datetime(2030, 1, 1, tzinfo=timezone.utc)
    stored_until = dialect.time_out(until)

    def row(version: int, owner: str | None, live: bool, token: str | None) -> tuple[Any, ...]:
        return (version, owner, stored_until if owner else None, token, live)

    # The row carries this commit's token one version on: the lost try went through.
    assert commit_refused("wf", 4, "tok", "me", row(5, None, False, "tok"), dialect) == 5
    # Someone else's token, or no token to compare: a conflict.
    other = commit_refused("wf", 4, "tok", "me", row(5, None, False, "theirs"), dialect)
    assert type(other) is ConcurrencyConflictError
    blind = commit_refused("wf", 4, None, "me", row(5, None, False, "tok"), dialect)
    assert type(blind) is ConcurrencyConflictError
    # Our token but not one version on (the row moved on since): a conflict.
    moved = commit_refused("wf", 4, "tok", "me", row(6, None, False, "tok"), dialect)
    assert type(moved) is ConcurrencyConflictError
    # At our version, another owner's live lease: leased, naming it and its end.
    leased = commit_refused("wf", 4, "tok", "me", row(4, "them", True, "old"), dialect)
    assert isinstance(leased, WorkflowLeasedError)
    assert (leased.owner, leased.expires_at) == ("them", until)
    # Our own lease, or an expired one, is no reason: whatever refused it was a conflict.
    mine = commit_refused("wf", 4, "tok", "me", row(4, "me", True, "old"), dialect)
    assert type(mine) is ConcurrencyConflictError
    expired = commit_refused("wf", 4, "tok", "me", row(4, "them", False, "old"), dialect)
    assert type(expired) is ConcurrencyConflictError
    missing = commit_refused("wf", 4, "tok", "me", None, dialect)
    assert isinstance(missing, WorkflowNotFoundError)
