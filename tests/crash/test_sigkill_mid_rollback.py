"""A process killed (SIGKILL) in the middle of a saga's rollback leaves a run that is still
rolling back, with every compensation before the killed one committed; another process finishes
the rollback, and every compensation's side effect happens exactly once.

Each compensation appends its name to ``calls`` when it starts and to ``effects`` when it does
its work. The second of three (Hotel) blocks between the two until it is killed, so its killed
attempt has no effect: it runs again on recovery (at least once: its commit never landed), and
the compensations whose commits did land never run again.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import COMPENSATE
from tests.crash.support import lines, open_provider, outlive_lease, run_until_killed

STEPS_MODULE = """
import os, pathlib, time
from pydantic import BaseModel, Field

WORK = pathlib.Path(os.environ["CRASH_WORK_DIR"])

class Trip(BaseModel):
    trip_id: str
    booked: list[str] = Field(default_factory=list)
    cancelled: list[str] = Field(default_factory=list)

def _note(name, what):
    with open(WORK / name, "a") as lines:
        lines.write(what + "\\n")

def book(state, context):
    return {"booked": [*state.booked, context.step_name]}

def pay(state, context):
    raise RuntimeError("card declined")

def _cancel(state, context, what):
    _note("calls", what)
    if what == "hotel" and (WORK / "hang").exists():
        (WORK / "in_cancel_hotel").write_text(context.workflow_id)
        time.sleep(120)  # the test kills the process here, before the hotel is cancelled
    _note("effects", what)
    return {"cancelled": [*state.cancelled, what]}

def cancel_flight(state, context):
    return _cancel(state, context, "flight")

def cancel_hotel(state, context):
    return _cancel(state, context, "hotel")

def cancel_car(state, context):
    return _cancel(state, context, "car")
"""

WORKFLOW = """
workflow_type: Trip
saga_enabled: true
steps:
  - name: Flight
    function: rollback_steps.book
    compensate_function: rollback_steps.cancel_flight
    automate_next: true
  - name: Hotel
    function: rollback_steps.book
    compensate_function: rollback_steps.cancel_hotel
    automate_next: true
  - name: Car
    function: rollback_steps.book
    compensate_function: rollback_steps.cancel_car
    automate_next: true
  - name: Pay
    function: rollback_steps.pay
"""

REGISTRY = """
workflows:
  - type: Trip
    config_file: trip.yaml
    initial_state_model: rollback_steps.Trip
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
                                  lease_seconds=1.0, heartbeat_interval_seconds=0.5)
        workflow = await builder.create_workflow("Trip", {"trip_id": "T-1"})
        # Flight, Hotel and Car commit, Pay fails; the rollback cancels the car, then hangs
        # in the hotel's cancellation until killed.
        await workflow.next_step()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] or None))
    """
)


async def test_sigkill_mid_rollback_then_finish_it_elsewhere(
    tmp_path: Path, database: tuple[str, str | None]
) -> None:
    url, schema = database
    work = tmp_path / "work"
    work.mkdir()
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "rollback_steps.py").write_text(STEPS_MODULE)
    (config / "workflow_registry.yaml").write_text(REGISTRY)
    (config / "trip.yaml").write_text(WORKFLOW)
    (work / "hang").touch()
    env = {**os.environ, "CRASH_WORK_DIR": str(work), "PYTHONPATH": str(tmp_path)}

    args = [sys.executable, "-c", CHILD, str(config), url, schema or ""]
    assert run_until_killed(args, env, work, "in_cancel_hotel", "cancel_hotel") == -signal.SIGKILL
    workflow_id = (work / "in_cancel_hotel").read_text()
    assert lines(work / "calls") == ["car", "hotel"]
    assert lines(work / "effects") == ["car"]

    # Another process (this one) finds the run where the kill left it: still rolling back.
    sys.path.insert(0, str(tmp_path))
    os.environ["CRASH_WORK_DIR"] = str(work)
    try:
        provider = open_provider(url, schema)
        builder = WorkflowBuilder(config_dir=config, persistence_provider=provider)
        await provider.initialize()
        found = [record.id for record in await provider.list_workflows(status="ACTIVE")]
        assert found == [workflow_id]
        workflow = await builder.load_workflow(workflow_id)
        assert workflow.rolling_back
        assert workflow.current_step_name == "Pay"
        assert [e["step_name"] for e in workflow.completed_steps_stack] == ["Flight", "Hotel"]
        assert workflow.state.cancelled == ["car"]
        log = await provider.get_compensation_log(workflow_id)
        assert [(e.step_name, e.action_type) for e in log] == [("Car", COMPENSATE)]
        audit = [e.event_type for e in await provider.get_audit_log(workflow_id)]
        assert audit[-3:] == ["STEP_FAILED", "COMPENSATION_STARTED", "COMPENSATION_EXECUTED"]

        # Recovery: the rollback goes on from the hotel, and ends.
        (work / "hang").unlink()
        await outlive_lease(provider, workflow_id)  # the dead driver's lease runs out
        assert await workflow.resume_rollback() is WorkflowStatus.FAILED_ROLLED_BACK

        reread = await builder.load_workflow(workflow_id)
        assert reread.status is WorkflowStatus.FAILED_ROLLED_BACK
        assert reread.state.cancelled == ["car", "hotel", "flight"]
        assert reread.completed_steps_stack == []
        # Every side effect exactly once; only the killed compensation was started twice.
        assert lines(work / "effects") == ["car", "hotel", "flight"]
        assert lines(work / "calls") == ["car", "hotel", "hotel", "flight"]
        log = await provider.get_compensation_log(workflow_id)
        assert [e.step_name for e in log] == ["Car", "Hotel", "Flight"]
        audit = [e.event_type for e in await provider.get_audit_log(workflow_id)]
        assert audit[-6:] == [
            "COMPENSATION_EXECUTED",
            "COMPENSATION_RESUMED",
            "COMPENSATION_EXECUTED",
            "COMPENSATION_EXECUTED",
            "COMPENSATION_COMPLETED",
            "WORKFLOW_FAILED",
        ]
        await builder.close()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("rollback_steps", None)
        os.environ.pop("CRASH_WORK_DIR", None)
        WorkflowBuilder.clear_import_cache()
