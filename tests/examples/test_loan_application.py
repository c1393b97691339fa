"""The loan-application example runs end to end: Decimal money and dates, a retried credit
check, a saga that rolls back a refused payout, idempotent resubmission, and an underwriter's
typed approval from a second process — on the default SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from tests.examples.conftest import run_example

EXPECTED_LINES = [
    "L-1001 COMPLETED",
    "L-1002 WAITING_HUMAN       step=Underwriter_Approval amount=60000.00 payment=1185.24",
    "L-1003 failed: bank refused the transfer to BLOCKED-0001",
    "L-1003 FAILED_ROLLED_BACK",
    "L-1004 COMPLETED",
    "L-1001 sent again: same workflow: True",
    "L-1001 sent with another amount: IdempotencyConflictError",
    "underwriter inbox: L-1002",
    "L-1002 decided by ulla.underwriter: COMPLETED",
    "L-1002 COMPLETED",
    "audit: ulla.underwriter sent",
]


def check_output(out: str) -> None:
    lines = out.splitlines()
    assert len(lines) == len(EXPECTED_LINES), out
    for line, start in zip(lines, EXPECTED_LINES, strict=True):
        assert line.startswith(start), (line, start)
    assert "disbursed 12000.00, 237.05/month, approved by policy" in lines[0]
    assert "reserved=0.00 | funds reserved; funds released" in lines[3]
    assert "declined (credit score)" in lines[4]
    assert "approved by ulla.underwriter" in lines[9]
    assert "'signature_pin': '**********'" in lines[10]
    assert "2468" not in out


def test_runs_on_the_default_sqlite_file(tmp_path: Path) -> None:
    check_output(run_example("loan_application", tmp_path, {}))

    async def stored() -> list[tuple[str, str, str]]:
        store = SQLitePersistenceProvider(tmp_path / "ruvon.db")
        await store.initialize()
        try:
            records = await store.list_workflows(limit=100)
            return sorted((r.state["application_id"], r.status, r.state["amount"]) for r in records)
        finally:
            await store.close()

    assert asyncio.run(stored()) == [
        ("L-1001", "COMPLETED", "12000.00"),
        ("L-1002", "COMPLETED", "60000.00"),
        ("L-1003", "FAILED_ROLLED_BACK", "9000.00"),
        ("L-1004", "COMPLETED", "5000.00"),
    ]


@pytest.mark.postgres
def test_runs_on_postgres(tmp_path: Path, postgres_schema_url: str) -> None:
    check_output(
        run_example("loan_application", tmp_path, {"RUVON_DATABASE_URL": postgres_schema_url})
    )
    assert not (tmp_path / "ruvon.db").exists()
