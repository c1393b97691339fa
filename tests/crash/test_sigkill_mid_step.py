"""A process killed (SIGKILL) in the middle of a step leaves a workflow that another process
finds at the step that was running — with everything before it committed — and completes.

The interrupted step runs again on recovery: steps are applied at least once, never lost.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from ruvon import WorkflowBuilder, WorkflowLeasedError, WorkflowStatus
from tests.crash.support import open_provider, outlive_lease, run_until_killed

STEPS_MODULE = """
import os, pathlib, time
from pydantic import BaseModel

WORK = pathlib.Path(os.environ["CRASH_WORK_DIR"])

class Shipment(BaseModel):
    order_id: str
    reserved: bool = False
    charged: bool = False
    shipped: bool = False

def reserve(state, context):
    return {"reserved": True}

def charge(state, context):
    with open(WORK / "charge_calls", "a") as calls:
        calls.write(context.workflow_id + "\\n")
    if (WORK / "hang").exists():
        (WORK / "in_charge").write_text(context.workflow_id)
        time.sleep(120)  # the test kills the process here
    return {"charged": True}

def ship(state, context):
    return {"shipped": True}
"""

WORKFLOW = """
workflow_type: Shipment
steps:
  - name: Reserve
    function: crash_steps.reserve
    automate_next: true
  - name: Charge
    function: crash_steps.charge
    automate_next: true
  - name: Ship
    function: crash_steps.ship
"""

REGISTRY = """
workflows:
  - type: Shipment
    config_file: shipment.yaml
    initial_state_model: crash_steps.Shipment
"""

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from ruvon import WorkflowBuilder
    from ruvon.settings import persistence_from_url

    async def main(config_dir, url, schema):
        options = {"schema": schema} if schema else {}
        builder = WorkflowBuilder(config_dir=config_dir,
                                  persistence_provider=persistence_from_url(url, **options),
                                  lease_seconds=5.0, heartbeat_interval_seconds=2.0)
        workflow = await builder.create_workflow("Shipment", {"order_id": "S-1"})
        print(workflow.id, flush=True)
        await workflow.next_step()  # Reserve commits, then Charge hangs until killed

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] or None))
    """
)


async def test_sigkill_mid_step_then_recover(
    tmp_path: Path, database: tuple[str, str | None]
) -> None:
    url, schema = database
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "crash_steps.py").write_text(STEPS_MODULE)
    (config / "workflow_registry.yaml").write_text(REGISTRY)
    (config / "shipment.yaml").write_text(WORKFLOW)
    (work / "hang").touch()
    env = {**os.environ, "CRASH_WORK_DIR": str(work), "PYTHONPATH": str(tmp_path)}

    args = [sys.executable, "-c", CHILD, str(config), url, schema or ""]
    assert run_until_killed(args, env, work, "in_charge", "the Charge step") == -signal.SIGKILL
    workflow_id = (work / "in_charge").read_text()

    # Another process (this one) finds the workflow where the crash left it.
    sys.path.insert(0, str(tmp_path))
    os.environ["CRASH_WORK_DIR"] = str(work)
    try:
        provider = open_provider(url, schema)
        builder = WorkflowBuilder(config_dir=config, persistence_provider=provider)
        await provider.initialize()
        found = [record.id for record in await provider.list_workflows(status="ACTIVE")]
        assert found == [workflow_id]
        workflow = await builder.load_workflow(workflow_id)
        assert workflow.current_step == "Charge"
        assert workflow.state.reserved is True and workflow.state.charged is False
        audit = [(e.event_type, e.step_name) for e in await provider.get_audit_log(workflow_id)]
        assert audit == [("WORKFLOW_STARTED", None), ("STEP_EXECUTED", "Reserve")]

        # The dead driver's lease still holds the run: a call now is refused before anything
        # runs (its lease lasts 5 s from its last renewal, at most 1 s before the kill).
        with pytest.raises(WorkflowLeasedError, match="is being driven by"):
            await workflow.next_step()
        assert (work / "charge_calls").read_text().split() == [workflow_id]
        # Recovery, once the lease ran out: the interrupted step runs again, the run completes.
        (work / "hang").unlink()
        await outlive_lease(provider, workflow_id)
        workflow = await builder.load_workflow(workflow_id)
        await workflow.next_step()
        assert workflow.status is WorkflowStatus.COMPLETED
        reread = await builder.load_workflow(workflow_id)
        assert reread.status is WorkflowStatus.COMPLETED
        assert reread.state.charged and reread.state.shipped
        calls = (work / "charge_calls").read_text().split()
        assert calls == [workflow_id, workflow_id]  # at least once: the killed attempt + recovery
        await builder.close()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("crash_steps", None)
        os.environ.pop("CRASH_WORK_DIR", None)
        WorkflowBuilder.clear_import_cache()
