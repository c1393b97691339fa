"""The order-approval example runs end to end, as the README shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.conftest import run_example


def test_runs_on_the_default_sqlite_file(tmp_path: Path) -> None:
    out = run_example("order_approval", tmp_path, {})
    assert (tmp_path / "ruvon.db").is_file()
    lines = out.splitlines()
    assert "A-100" in lines[0] and "COMPLETED" in lines[0] and "approved by auto" in lines[0]
    assert "B-200" in lines[1] and "WAITING_HUMAN" in lines[1] and "Manager_Approval" in lines[1]
    assert "COMPLETED" in lines[2] and "approved by manager.mia" in lines[2]
    assert "WORKFLOW_PAUSED(Manager_Approval) > WORKFLOW_RESUMED(Manager_Approval)" in lines[3]
    assert lines[3].endswith("WORKFLOW_COMPLETED")


def test_each_run_adds_workflows_to_the_same_file(tmp_path: Path) -> None:
    import asyncio

    from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider

    run_example("order_approval", tmp_path, {})
    run_example("order_approval", tmp_path, {})

    async def count() -> list[str]:
        store = SQLitePersistenceProvider(tmp_path / "ruvon.db")
        await store.initialize()
        try:
            return [r.status for r in await store.list_workflows(limit=100)]
        finally:
            await store.close()

    assert sorted(asyncio.run(count())) == ["COMPLETED"] * 4


@pytest.mark.postgres
def test_runs_on_postgres(tmp_path: Path, postgres_schema_url: str) -> None:
    out = run_example("order_approval", tmp_path, {"RUVON_DATABASE_URL": postgres_schema_url})
    assert not (tmp_path / "ruvon.db").exists()
    assert "approved by manager.mia" in out
