"""The order-approval example runs end to end, as the README shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "order_approval"


def run_example(cwd: Path, env_extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUVON_")}
    env.update(env_extra)
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "run.py")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_runs_on_the_default_sqlite_file(tmp_path: Path) -> None:
    out = run_example(tmp_path, {})
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

    run_example(tmp_path, {})
    run_example(tmp_path, {})

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
    out = run_example(tmp_path, {"RUVON_DATABASE_URL": postgres_schema_url})
    assert not (tmp_path / "ruvon.db").exists()
    assert "approved by manager.mia" in out
