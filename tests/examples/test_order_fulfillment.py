"""The order-fulfillment example runs end to end: declared dependencies make the three
independent services one stage that runs on three threads of the ThreadPoolExecutionProvider
and is committed together, a PARALLEL fan-out over the order lines merges DEEP, and a LOOP
ships each package — on the default SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from ruvon.implementations.execution.thread_pool import THREAD_NAME_PREFIX
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from tests.examples.conftest import run_example

STAGE = ["Reserve_Stock", "Check_Fraud", "Quote_Shipping"]

EXPECTED_LINES = [
    "stage 1  Validate_Order   at checkout: ACTIVE, subtotal 103.30 EUR",
    f"worker loaded F-1001: ready_steps = {STAGE!r}",
    "stage 2  Reserve_Stock + Check_Fraud + Quote_Shipping: committed together, 3 threads,",
    "         Reserve_Stock    RSV-F-1001, 65 units held",
    "         Check_Fraud      score 17: pass",
    "         Quote_Shipping   DHL 5.90 EUR",
    "stage 3  Charge_Payment   109.20 EUR = 103.30 goods + 5.90 shipping (PAY-F-1001)",
    "stage 4  Allocate_Items   3 tasks, merged DEEP: "
    "{'berlin': {'pen': 3}, 'leipzig': {'ink': 2, 'notebook': 60}}",
    "stage 5  Plan_Packages    F-1001-P1 from berlin, F-1001-P2 from leipzig",
    "stage 6  Ship_Packages    2 iterations: F-1001-P1 DHL",
    "stage 7  Complete_Order   2 packages shipped, 109.20 EUR charged (PAY-F-1001)",
    "F-1001 COMPLETED: 9 steps completed in 7 stages, ready_steps = []",
]


def check_output(out: str) -> None:
    lines = out.splitlines()
    assert len(lines) == len(EXPECTED_LINES), out
    for line, start in zip(lines, EXPECTED_LINES, strict=True):
        assert line.startswith(start), (line, start)
    # The stage's three calls ran on three different threads of the pool.
    threads = [re.search(r" on (\S+)$", line) for line in lines[3:6]]
    names = {match.group(1) for match in threads if match is not None}
    assert len(names) == 3, lines[3:6]
    assert all(name.startswith(f"{THREAD_NAME_PREFIX}_") for name in names), names
    # The LOOP ran once per package, each with its own tracking number.
    assert re.fullmatch(
        r"stage 6 +Ship_Packages +2 iterations: F-1001-P1 DHL\d{10}, F-1001-P2 DHL\d{10}",
        lines[9],
    ), lines[9]


def test_runs_on_the_default_sqlite_file(tmp_path: Path) -> None:
    check_output(run_example("order_fulfillment", tmp_path, {}))

    async def stored() -> tuple[Any, ...]:
        store = SQLitePersistenceProvider(tmp_path / "ruvon.db")
        await store.initialize()
        try:
            (record,) = await store.list_workflows(limit=10)
            audit = await store.get_audit_log(record.id)
        finally:
            await store.close()
        executed = [e.step_name for e in audit if e.event_type == "STEP_EXECUTED"]
        return record.status, record.state, record.progress["steps"], executed

    status, state, steps, executed = asyncio.run(stored())
    assert status == "COMPLETED"
    # Money is stored as exact decimal strings.
    assert (state["subtotal"], state["charged"], state["shipping"]["price"]) == (
        "103.30",
        "109.20",
        "5.90",
    )
    assert state["by_warehouse"] == {"berlin": {"pen": 3}, "leipzig": {"ink": 2, "notebook": 60}}
    assert set(steps.values()) == {"completed"} and len(steps) == 9
    # The stage is audited step by step, in file order.
    assert executed == [
        "Validate_Order",
        *STAGE,
        "Charge_Payment",
        "Allocate_Items",
        "Plan_Packages",
        "Ship_Packages",
        "Complete_Order",
    ]


@pytest.mark.postgres
def test_runs_on_postgres(tmp_path: Path, postgres_schema_url: str) -> None:
    check_output(
        run_example("order_fulfillment", tmp_path, {"RUVON_DATABASE_URL": postgres_schema_url})
    )
    assert not (tmp_path / "ruvon.db").exists()
