"""A waiting workflow outlives the objects, the provider and the process that created it: a new
builder on a new SQLite provider (or in another process) loads and resumes it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

from ruvon import WorkflowStatus
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from tests.support.config import ConfigDir, audit_types

REPO_ROOT = Path(__file__).resolve().parents[2]
APPROVAL = {"approved": True, "approver": "Ann"}


async def _resume_and_finish(config: ConfigDir, db_path: Path, workflow_id: str) -> None:
    """Load the workflow with a brand-new builder and provider, approve it, finish it."""
    provider = SQLitePersistenceProvider(db_path)
    builder = config.builder(provider)
    try:
        loaded = await builder.load_workflow(workflow_id)
        assert loaded.status is WorkflowStatus.WAITING_HUMAN
        assert loaded.current_step == "Approve"
        assert loaded.state.visited == ["Prepare"]

        _, next_name = await loaded.next_step(APPROVAL)
        assert next_name == "Ship"
        await loaded.next_step()
        assert loaded.status is WorkflowStatus.COMPLETED
    finally:
        await builder.close()

    # A third provider reads what the second one committed.
    async with SQLitePersistenceProvider(db_path) as reader:
        final = await config.builder(reader).load_workflow(workflow_id)
        assert final.status is WorkflowStatus.COMPLETED
        assert final.state.visited == ["Prepare", "Approve", "Ship"]
        assert final.state.approver == "Ann"
        assert await audit_types(reader, workflow_id) == [
            "WORKFLOW_STARTED",
            "STEP_EXECUTED",
            "WORKFLOW_PAUSED",
            "WORKFLOW_RESUMED",
            "STEP_EXECUTED",
            "STEP_EXECUTED",
            "WORKFLOW_COMPLETED",
        ]


async def test_resume_with_a_fresh_builder_and_provider(config: ConfigDir, tmp_path: Path) -> None:
    db_path = tmp_path / "shared.db"
    first = SQLitePersistenceProvider(db_path)
    builder = config.builder(first)
    workflow = await builder.create_workflow("Approval", {"order_id": "R1"})
    await workflow.next_step()
    assert workflow.status is WorkflowStatus.WAITING_HUMAN
    await builder.close()  # closes ``first``: nothing of it is used again

    await _resume_and_finish(config, db_path, workflow.id)


CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys

    from ruvon.builder import WorkflowBuilder
    from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider

    async def main(registry, db_path):
        provider = SQLitePersistenceProvider(db_path)
        builder = WorkflowBuilder(registry, persistence_provider=provider)
        workflow = await builder.create_workflow("Approval", {"order_id": "R2"})
        await workflow.next_step()
        return {"id": workflow.id, "status": workflow.status.value}

    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))), flush=True)
    # Leave without closing anything: the commit must already be durable.
    os._exit(0)
    """
)


async def test_resume_a_workflow_created_by_another_process(
    config: ConfigDir, tmp_path: Path
) -> None:
    db_path = tmp_path / "shared.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(config.registry_path),
        str(db_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 0, stderr.decode()
    created = json.loads(stdout)
    assert created["status"] == "WAITING_HUMAN"
    await _resume_and_finish(config, db_path, created["id"])
