"""A worker process that beats (HeartbeatManager, every 0.2 s) while it runs a step is killed
with SIGKILL in the middle of the step. Its heartbeat goes stale, and another process's
ZombieScanner finds the run: with ``fail`` it ends FAILED_WORKER_CRASH; with ``resume`` it is
ACTIVE again and a Worker completes it, every step before the killed one having run exactly
once and the killed one again (at least once).

Steps write their side effects to files: ``calls`` when a step starts, ``effects`` when it has
done its work. Charge blocks between the two (after a marker file tells the test it is there)
until it is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.worker import DrivenRun, Worker
from ruvon.zombie_scanner import ZombieScanner
from tests.crash.support import lines, open_provider, run_until_killed

STEPS_MODULE = """
import asyncio, os, pathlib
from pydantic import BaseModel

WORK = pathlib.Path(os.environ["CRASH_WORK_DIR"])

class Shipment(BaseModel):
    order_id: str
    reserved: bool = False
    charged: bool = False
    shipped: bool = False

def _note(name, what):
    with open(WORK / name, "a") as lines:
        lines.write(what + "\\n")

def reserve(state, context):
    _note("calls", "reserve")
    _note("effects", "reserve")
    return {"reserved": True}

async def charge(state, context):
    _note("calls", "charge")
    if (WORK / "hang").exists():
        (WORK / "in_charge").write_text(context.workflow_id)
        await asyncio.sleep(120)  # the test kills the process here; the heartbeat goes on
    _note("effects", "charge")
    return {"charged": True}

def ship(state, context):
    _note("calls", "ship")
    _note("effects", "ship")
    return {"shipped": True}
"""

WORKFLOW = """
workflow_type: Shipment
steps:
  - name: Reserve
    function: zombie_steps.reserve
    automate_next: true
  - name: Charge
    function: zombie_steps.charge
    automate_next: true
  - name: Ship
    function: zombie_steps.ship
"""

REGISTRY = """
workflows:
  - type: Shipment
    config_file: shipment.yaml
    initial_state_model: zombie_steps.Shipment
"""

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from ruvon import WorkflowBuilder
    from ruvon.heartbeat import HeartbeatManager
    from ruvon.settings import persistence_from_url

    async def main(config_dir, url, schema):
        options = {"schema": schema} if schema else {}
        provider = persistence_from_url(url, **options)
        builder = WorkflowBuilder(config_dir=config_dir, persistence_provider=provider)
        workflow = await builder.create_workflow("Shipment", {"order_id": "S-1"})
        beat = HeartbeatManager(provider, workflow.id, worker_id="doomed",
                                heartbeat_interval_seconds=0.2)
        await beat.start(current_step=workflow.current_step_name)
        await workflow.next_step()  # Reserve commits, then Charge hangs until killed

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] or None))
    """
)


@pytest.fixture
def killed(tmp_path: Path, database: tuple[str, str | None]) -> Iterator[tuple[Path, str]]:
    """A child process started the run and was SIGKILLed inside Charge; (work dir, run id).
    The step module is importable here too, for the process that recovers the run."""
    url, schema = database
    work, config = tmp_path / "work", tmp_path / "config"
    work.mkdir()
    config.mkdir()
    (tmp_path / "zombie_steps.py").write_text(STEPS_MODULE)
    (config / "workflow_registry.yaml").write_text(REGISTRY)
    (config / "shipment.yaml").write_text(WORKFLOW)
    (work / "hang").touch()
    env = {**os.environ, "CRASH_WORK_DIR": str(work), "PYTHONPATH": str(tmp_path)}
    args = [sys.executable, "-c", CHILD, str(config), url, schema or ""]
    assert run_until_killed(args, env, work, "in_charge", "the Charge step") == -signal.SIGKILL
    assert lines(work / "calls") == ["reserve", "charge"]
    assert lines(work / "effects") == ["reserve"]

    sys.path.insert(0, str(tmp_path))
    os.environ["CRASH_WORK_DIR"] = str(work)
    try:
        yield work, (work / "in_charge").read_text()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("zombie_steps", None)
        os.environ.pop("CRASH_WORK_DIR", None)
        WorkflowBuilder.clear_import_cache()


async def _until_recovered(scanner: ZombieScanner, workflow_id: str) -> dict[str, object]:
    """Scan until the killed worker's heartbeat is stale and the run recovered (bounded)."""
    for _ in range(600):
        summary = await scanner.scan_and_recover()
        if summary["zombies_recovered"]:
            return summary
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow {workflow_id} was never found as a zombie")


async def test_a_killed_worker_is_detected_and_its_run_failed(
    killed: tuple[Path, str], database: tuple[str, str | None]
) -> None:
    work, workflow_id = killed
    provider = open_provider(*database)
    await provider.initialize()
    try:
        scanner = ZombieScanner(provider, stale_threshold_seconds=1.0, policy="fail")
        summary = await _until_recovered(scanner, workflow_id)

        assert summary["zombies"] == [
            {
                **summary["zombies"][0],  # type: ignore[index]
                "workflow_id": workflow_id,
                "worker_id": "doomed",
                "status": "ACTIVE",
            }
        ]
        record = await provider.load_workflow(workflow_id)
        assert record is not None
        assert (record.status, record.current_step) == ("FAILED_WORKER_CRASH", "Charge")
        audit = [e.event_type for e in await provider.get_audit_log(workflow_id)]
        assert audit == ["WORKFLOW_STARTED", "STEP_EXECUTED", "ZOMBIE_DETECTED"]
        logs = await provider.get_execution_logs(workflow_id, level="ERROR")
        assert logs[0].message.startswith("Workflow marked as FAILED_WORKER_CRASH")
        assert await provider.get_stale_heartbeats(0) == []
        assert lines(work / "effects") == ["reserve"]
    finally:
        await provider.close()


async def test_a_killed_workers_run_is_resumed_and_completed_by_a_worker(
    killed: tuple[Path, str], database: tuple[str, str | None], tmp_path: Path
) -> None:
    work, workflow_id = killed
    provider = open_provider(*database)
    builder = WorkflowBuilder(config_dir=tmp_path / "config", persistence_provider=provider)
    await provider.initialize()
    try:
        scanner = ZombieScanner(provider, stale_threshold_seconds=1.0, policy="resume")
        await _until_recovered(scanner, workflow_id)
        (work / "hang").unlink()

        done = await Worker(builder, idle_seconds=3600).run_once()

        assert done.driven == [DrivenRun(workflow_id, "recovered", "COMPLETED")]
        workflow = await builder.load_workflow(workflow_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert workflow.state.charged and workflow.state.shipped
        # Reserve (committed before the kill) ran exactly once; Charge ran again, and its
        # effect happened once, by the attempt that committed.
        assert lines(work / "calls") == ["reserve", "charge", "charge", "ship"]
        assert lines(work / "effects") == ["reserve", "charge", "ship"]
        audit = [e.event_type for e in await provider.get_audit_log(workflow_id)]
        assert audit[:5] == [
            "WORKFLOW_STARTED",
            "STEP_EXECUTED",
            "ZOMBIE_DETECTED",
            "WORKFLOW_RECOVERED",
            "WORKFLOW_CLAIMED",
        ]
    finally:
        await builder.close()
