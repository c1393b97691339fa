"""Leases between real processes, on a SQLite file and on PostgreSQL.

- Two processes that call ``next_step()`` on the same run at the same moment: one claims the
  lease and runs the step, the other is refused before its step function runs (so the step's
  side effect happens once), and so is a third that comes while the first is inside the step.
- A driver killed (SIGKILL) in a step before its first heartbeat leaves no heartbeat row,
  only its lease: once the lease has expired, the ``ZombieScanner`` finds the run by
  it (``source == "lease"``); with ``fail`` the run ends FAILED_WORKER_CRASH, with ``resume`` a
  Worker completes it, the steps before the killed one having run exactly once.

Processes are synchronised by marker files, never by sleeping and hoping. The killed step
blocks its event loop (a plain function that sleeps), so its driver can neither beat nor renew
its lease: it is exactly a driver that died before its first heartbeat.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ruvon import WorkflowBuilder, WorkflowStatus
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord
from ruvon.worker import DrivenRun, Worker
from ruvon.zombie_scanner import ZombieScanner
from tests.crash.support import lines, open_provider, outlive_lease, run_until_killed

STEPS_MODULE = """
import os, pathlib, time
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

def _wait_for(marker):
    deadline = time.monotonic() + 60
    while not (WORK / marker).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"never saw {marker}")
        time.sleep(0.01)

def reserve(state, context):
    _note("calls", "reserve")
    _note("effects", "reserve")
    return {"reserved": True}

def charge(state, context):
    _note("calls", "charge")
    if (WORK / "hang").exists():
        (WORK / "in_charge").write_text(context.workflow_id)
        time.sleep(120)  # the test kills the process here (its event loop blocked meanwhile)
    if (WORK / "hold").exists():
        (WORK / "in_charge").write_text(context.workflow_id)
        _wait_for("finish")  # the other drivers try meanwhile
    _note("effects", "charge")
    return {"charged": True}

def ship(state, context):
    _note("calls", "ship")
    _note("effects", "ship")
    return {"shipped": True}
"""

CHAINED = """
workflow_type: Shipment
steps:
  - name: Reserve
    function: lease_steps.reserve
    automate_next: true
  - name: Charge
    function: lease_steps.charge
    automate_next: true
  - name: Ship
    function: lease_steps.ship
"""

ONE_BY_ONE = """
workflow_type: Race
steps:
  - name: Charge
    function: lease_steps.charge
  - name: Ship
    function: lease_steps.ship
"""

REGISTRY = """
workflows:
  - type: Shipment
    config_file: shipment.yaml
    initial_state_model: lease_steps.Shipment
  - type: Race
    config_file: race.yaml
    initial_state_model: lease_steps.Shipment
"""

PRELUDE = """
import asyncio, pathlib, sys, time
from ruvon import ConcurrencyConflictError, WorkflowBuilder
from ruvon.settings import persistence_from_url

def builder_for(config_dir, url, schema, **kwargs):
    options = {"schema": schema} if schema else {}
    provider = persistence_from_url(url, **options)
    return WorkflowBuilder(config_dir=config_dir, persistence_provider=provider, **kwargs)
"""

DRIVER = PRELUDE + textwrap.dedent(
    """
    async def main(config_dir, url, schema, workflow_id, work, name):
        work = pathlib.Path(work)
        builder = builder_for(config_dir, url, schema)
        try:
            workflow = await builder.load_workflow(workflow_id)
            (work / f"loaded-{name}").touch()
            deadline = time.monotonic() + 60
            while not (work / "go").exists():
                assert time.monotonic() < deadline, "never told to go"
                await asyncio.sleep(0.01)
            try:
                await workflow.next_step()
            except ConcurrencyConflictError as exc:
                print(f"{type(exc).__name__}: {exc}", flush=True)
                return 3
            print("ran", flush=True)
            return 0
        finally:
            await builder.close()

    sys.exit(asyncio.run(main(*sys.argv[1:6], sys.argv[6])))
    """
)
"""Loads the run, says so (``loaded-<name>``), waits for ``go``, then calls ``next_step``:
exit 0 if it ran the step, 3 (with the error printed) if it was refused."""

DOOMED = PRELUDE + textwrap.dedent(
    """
    async def main(config_dir, url, schema):
        # Killed before its first heartbeat (0.9 s): only the lease (1 s) says who drives.
        builder = builder_for(config_dir, url, schema,
                              lease_seconds=1.0, heartbeat_interval_seconds=0.9)
        workflow = await builder.create_workflow("Shipment", {"order_id": "S-1"})
        await workflow.next_step()  # Reserve commits, then Charge hangs until killed

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] or None))
    """
)

THRESHOLD = 0.2
"""The scanner's staleness threshold: a row unchanged for this long (after its lease expired)."""


class Setup:
    """The files of one test: work directory (markers, side effects), config, child env."""

    def __init__(self, root: Path, database: tuple[str, str | None]) -> None:
        self.url, self.schema = database
        self.work, self.config = root / "work", root / "config"
        self.work.mkdir()
        self.config.mkdir()
        (root / "lease_steps.py").write_text(STEPS_MODULE)
        (self.config / "workflow_registry.yaml").write_text(REGISTRY)
        (self.config / "shipment.yaml").write_text(CHAINED)
        (self.config / "race.yaml").write_text(ONE_BY_ONE)
        self.env = {**os.environ, "CRASH_WORK_DIR": str(self.work), "PYTHONPATH": str(root)}

    def args(self, script: str, *more: str) -> list[str]:
        return [sys.executable, "-c", script, str(self.config), self.url, self.schema or "", *more]

    def builder(self) -> WorkflowBuilder:
        return WorkflowBuilder(
            config_dir=self.config, persistence_provider=open_provider(self.url, self.schema)
        )


@pytest.fixture
def setup(tmp_path: Path, database: tuple[str, str | None]) -> Iterator[Setup]:
    """The test's files; the step module importable here too (this process creates and
    recovers runs)."""
    made = Setup(tmp_path, database)
    sys.path.insert(0, str(tmp_path))
    os.environ["CRASH_WORK_DIR"] = str(made.work)
    try:
        yield made
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lease_steps", None)
        os.environ.pop("CRASH_WORK_DIR", None)
        WorkflowBuilder.clear_import_cache()


class Child:
    """A child process whose output goes to ``work/<name>.out`` and ``.err``."""

    def __init__(self, setup: Setup, args: list[str], name: str) -> None:
        self.name = name
        self.out, self.err = setup.work / f"{name}.out", setup.work / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(args, env=setup.env, stdout=out, stderr=err)

    def exited(self) -> bool:
        return self.process.poll() is not None

    def check(self) -> None:
        """Fail the test if the child ended otherwise than by being refused (the test waits
        for the one that runs the step with :meth:`result`)."""
        code = self.process.poll()
        assert code in (None, 3), f"{self.name} ended ({code}): {self.err.read_text()}"

    def result(self) -> tuple[int, str]:
        """(exit code, what it printed), once it has ended (bounded wait)."""
        code = self.process.wait(timeout=60)
        assert code in (0, 3), f"{self.name} failed ({code}): {self.err.read_text()}"
        return code, self.out.read_text().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def wait_until(check: Callable[[], bool], children: list[Child], what: str) -> None:
    """Poll (bounded) until ``check()``; a child that fails meanwhile fails the test."""
    deadline = time.monotonic() + 60
    while not check():
        for child in children:
            child.check()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


async def stored(provider: PersistenceProvider, workflow_id: str) -> WorkflowRecord:
    record = await provider.load_workflow(workflow_id)
    assert record is not None
    return record


# -- two drivers at once -------------------------------------------------------------------


async def test_of_two_drivers_at_the_same_moment_exactly_one_runs_the_step(
    setup: Setup,
) -> None:
    builder = setup.builder()
    children: list[Child] = []
    try:
        run = await builder.create_workflow("Race", {"order_id": "R-1"})
        provider = run.persistence
        (setup.work / "hold").touch()
        args = setup.args(DRIVER, run.id, str(setup.work))
        children = [Child(setup, [*args, name], name) for name in ("one", "two")]
        wait_until(
            lambda: all((setup.work / f"loaded-{c.name}").exists() for c in children),
            children,
            "both drivers to load the run",
        )

        (setup.work / "go").touch()

        # One of them is inside the step (it waits for "finish"); the other was refused.
        wait_until(
            lambda: (setup.work / "in_charge").exists() and any(c.exited() for c in children),
            children,
            "one driver in the step and the other refused",
        )
        loser = next(c for c in children if c.exited())
        winner = next(c for c in children if c is not loser)
        code, printed = loser.result()
        assert code == 3, printed
        # Both loaded version 1; the winner's claim moved it on: a conflict (or the lease).
        assert printed.startswith(("ConcurrencyConflictError:", "WorkflowLeasedError:"))
        assert not winner.exited()

        # A third driver that loads the run now meets the live lease itself.
        late = Child(setup, [*args, "late"], "late")
        children.append(late)
        code, printed = late.result()
        assert code == 3, printed
        assert printed.startswith("WorkflowLeasedError:") and "is being driven by" in printed
        leased = await stored(provider, run.id)
        assert leased.lease_owner is not None and leased.lease_owner in printed
        assert leased.version == 2  # created, claimed by the winner

        (setup.work / "finish").touch()
        assert winner.result() == (0, "ran")

        assert lines(setup.work / "calls") == ["charge"]
        assert lines(setup.work / "effects") == ["charge"]  # the step ran once
        ended = await stored(provider, run.id)
        assert (ended.version, ended.status, ended.current_step) == (3, "ACTIVE", "Ship")
        assert ended.state["charged"] is True
        assert (ended.lease_owner, ended.lease_expires_at) == (None, None)
    finally:
        for child in children:
            child.stop()
        await builder.close()


# -- a driver killed before its first heartbeat --------------------------------------------


@pytest.fixture
def killed(setup: Setup) -> tuple[Setup, str]:
    """A child started the run and was SIGKILLed inside Charge, before any heartbeat; (setup,
    run id)."""
    (setup.work / "hang").touch()
    args = setup.args(DOOMED)
    code = run_until_killed(args, setup.env, setup.work, "in_charge", "the Charge step")
    assert code == -signal.SIGKILL
    assert lines(setup.work / "calls") == ["reserve", "charge"]
    assert lines(setup.work / "effects") == ["reserve"]
    return setup, (setup.work / "in_charge").read_text()


async def found_by_its_lease(
    provider: PersistenceProvider, workflow_id: str
) -> list[dict[str, object]]:
    """The zombies a scanner finds once the killed driver's lease has expired and the row has
    been unchanged for the threshold (both known times); the run must be among them alone."""
    record = await stored(provider, workflow_id)
    assert (record.status, record.current_step) == ("ACTIVE", "Charge")
    assert record.version == 3  # created, claimed, Reserve committed (the lease kept)
    assert await provider.get_stale_heartbeats(-3600) == []  # it never beat
    assert record.lease_expires_at is not None
    owner = await outlive_lease(provider, workflow_id)
    await asyncio.sleep(THRESHOLD)
    zombies = await ZombieScanner(provider, stale_threshold_seconds=THRESHOLD).scan()
    assert zombies == [
        {
            **zombies[0],
            "workflow_id": workflow_id,
            "workflow_type": "Shipment",
            "status": "ACTIVE",
            "worker_id": owner,
            "current_step": "Charge",
            "metadata": None,
            "source": "lease",
            "lease_expires_at": record.lease_expires_at.isoformat(),
        }
    ]
    return zombies


async def test_a_driver_killed_before_its_first_heartbeat_is_found_and_failed(
    killed: tuple[Setup, str],
) -> None:
    setup, workflow_id = killed
    provider = open_provider(setup.url, setup.schema)
    await provider.initialize()
    try:
        zombies = await found_by_its_lease(provider, workflow_id)
        scanner = ZombieScanner(provider, stale_threshold_seconds=THRESHOLD, policy="fail")

        assert await scanner.recover(zombies) == 1

        record = await stored(provider, workflow_id)
        assert (record.status, record.current_step) == ("FAILED_WORKER_CRASH", "Charge")
        assert (record.lease_owner, record.lease_expires_at) == (None, None)
        assert record.error_message is not None
        assert "before its first heartbeat" in record.error_message
        audit = [e.event_type for e in await provider.get_audit_log(workflow_id)]
        assert audit == ["WORKFLOW_STARTED", "STEP_EXECUTED", "ZOMBIE_DETECTED"]
        logs = await provider.get_execution_logs(workflow_id, level="ERROR")
        assert [entry.message.split(":")[0] for entry in logs] == [
            "Workflow marked as FAILED_WORKER_CRASH"
        ]
        assert await scanner.scan() == []  # recovered once, found no more
        assert lines(setup.work / "effects") == ["reserve"]
    finally:
        await provider.close()


async def test_a_driver_killed_before_its_first_heartbeat_is_resumed_and_completed(
    killed: tuple[Setup, str],
) -> None:
    setup, workflow_id = killed
    builder = setup.builder()
    provider = builder.persistence_provider
    assert provider is not None
    await provider.initialize()
    try:
        zombies = await found_by_its_lease(provider, workflow_id)
        scanner = ZombieScanner(provider, stale_threshold_seconds=THRESHOLD, policy="resume")
        assert await scanner.recover(zombies) == 1
        assert await scanner.scan() == []
        resumed = await stored(provider, workflow_id)
        assert (resumed.status, resumed.lease_owner) == ("ACTIVE", None)
        (setup.work / "hang").unlink()

        done = await Worker(builder, idle_seconds=0).run_once()

        assert done.driven == [DrivenRun(workflow_id, "recovered", "COMPLETED")]
        workflow = await builder.load_workflow(workflow_id)
        assert workflow.status is WorkflowStatus.COMPLETED
        assert workflow.state.reserved and workflow.state.charged and workflow.state.shipped
        # Reserve (committed before the kill) ran exactly once; Charge ran again (at least
        # once), its effect happening once, by the attempt that committed.
        assert lines(setup.work / "calls") == ["reserve", "charge", "charge", "ship"]
        assert lines(setup.work / "effects") == ["reserve", "charge", "ship"]
        audit = [e.event_type for e in await provider.get_audit_log(workflow_id)]
        assert audit[:5] == [
            "WORKFLOW_STARTED",
            "STEP_EXECUTED",
            "ZOMBIE_DETECTED",
            "WORKFLOW_RECOVERED",
            "WORKFLOW_CLAIMED",
        ]
        ended = await stored(provider, workflow_id)
        assert (ended.lease_owner, ended.lease_expires_at) == (None, None)
    finally:
        await builder.close()
