"""The order-with-shipping example runs end to end, as its README shows it: the order waits for
its Shipment sub-workflow, the shipment's confirmation (from a second builder) completes both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.examples.conftest import run_example

NAME = "order_with_shipping"


def _check(out: str) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("order C-300") and "WAITING_CHILD_HUMAN_INPUT" in lines[0]
    assert "step=Ship" in lines[0]
    assert "its shipment" in lines[1] and "WAITING_HUMAN" in lines[1]
    assert "step=Warehouse_Confirmation" in lines[1]
    assert "child: True, waiting at Warehouse_Confirmation, 33.9 kg packed" in lines[2]
    assert "order.next_step() refused" in lines[3]
    assert lines[4].startswith("shipment confirmed") and "COMPLETED" in lines[4]
    assert lines[5].startswith("order C-300") and "COMPLETED" in lines[5]
    assert lines[6].strip() == "shipped (490.00, tracking TRK-C-300-2)"
    assert "sub_workflow_results[" in lines[7] and "Shipment COMPLETED" in lines[7]
    assert "'tracking_number': 'TRK-C-300-2'" in lines[7]
    assert "spawned notice" in lines[8] and "COMPLETED" in lines[8]
    assert "spawned_by the order: True, parent: None" in lines[9]
    assert lines[10].startswith("audit: WORKFLOW_STARTED")
    assert (
        "SUB_WORKFLOW_STARTED(Ship) > SUB_WORKFLOW_WAITING(Ship) > SUB_WORKFLOW_COMPLETED(Ship)"
        in lines[10]
    )
    assert lines[10].endswith("WORKFLOW_COMPLETED")


def test_runs_on_the_default_sqlite_file(tmp_path: Path) -> None:
    out = run_example(NAME, tmp_path, {})
    assert (tmp_path / "ruvon.db").is_file()
    _check(out)


def test_the_file_holds_the_order_its_shipment_and_the_notice(tmp_path: Path) -> None:
    from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider

    run_example(NAME, tmp_path, {})
    run_example(NAME, tmp_path, {})  # a second run adds three more, all completed

    async def rows() -> list[tuple[str, str, bool]]:
        store = SQLitePersistenceProvider(tmp_path / "ruvon.db")
        await store.initialize()
        try:
            return [
                (r.workflow_type, r.status, r.parent_execution_id is not None)
                for r in await store.list_workflows(limit=100)
            ]
        finally:
            await store.close()

    assert sorted(asyncio.run(rows())) == sorted(
        [
            ("ShippedOrder", "COMPLETED", False),
            ("Shipment", "COMPLETED", True),
            ("ShippingNotice", "COMPLETED", False),
        ]
        * 2
    )


@pytest.mark.postgres
def test_runs_on_postgres(tmp_path: Path, postgres_schema_url: str) -> None:
    out = run_example(NAME, tmp_path, {"RUVON_DATABASE_URL": postgres_schema_url})
    assert not (tmp_path / "ruvon.db").exists()
    _check(out)
