"""``scan-zombies``, ``zombie-daemon``, ``worker`` and ``scheduler run`` through the installed
console script, on SQLite and PostgreSQL. Zombies are made with the SDK (an ACTIVE run and a
heartbeat nobody refreshes) and found with ``--threshold 0``, never by waiting. The
long-running commands are real processes: the test waits (bounded) for their output, then
signals them."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest

from ruvon import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from ruvon.settings import persistence_from_url
from tests.cli.conftest import Cli, ruvon_script
from tests.providers.test_persistence_compliance import make_record

ORDER = {
    "order_id": "A-1",
    "customer": "ada",
    "items": [{"sku": "pen", "quantity": 3, "unit_price": 2.5}],
}
"""A small order: approved automatically, so a run driven from its first step completes."""


@asynccontextmanager
async def store_of(cli: Cli) -> AsyncIterator[PersistenceProvider]:
    """The SDK's store on the test's database."""
    store = persistence_from_url(cli.db)
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()


async def make_zombie(cli: Cli, workflow_id: str = "wf-zombie") -> str:
    """A run ACTIVE in a step whose worker died: a heartbeat that nobody refreshes."""
    async with store_of(cli) as store:
        await store.create_workflow(make_record(workflow_id))
        await store.upsert_heartbeat(workflow_id, "dead-worker", "validate", {"pid": 0})
    return workflow_id


async def order_zombie(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real OrderApproval run (the project's definition) whose worker died in its first
    step."""
    monkeypatch.syspath_prepend(str(cli.cwd))  # the step package, as the CLI imports it
    async with store_of(cli) as store:
        builder = WorkflowBuilder(config_dir=cli.cwd / "config", persistence_provider=store)
        run = await builder.create_workflow("OrderApproval", ORDER)
        await store.upsert_heartbeat(run.id, "dead-worker", "Validate_Order", {"pid": 0})
        await builder.close()
    return run.id


async def status_of(cli: Cli, workflow_id: str) -> str:
    async with store_of(cli) as store:
        record = await store.load_workflow(workflow_id)
    assert record is not None
    return record.status


class Process:
    """A long-running ``ruvon`` command whose output lines are read as they come."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.proc = subprocess.Popen(
            [ruvon_script(), *args, "--db", cli.db],
            cwd=cli.cwd,
            env=cli.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The first output line (from now on) containing ``text``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                pytest.fail(f"exited ({self.proc.wait()}) before {text!r}: {self.out} {err}")
            self.out.append(line)
            if text in line:
                return line
        pytest.fail(f"no {text!r} within {timeout} s: {self.out}")

    def stop(self, signum: signal.Signals) -> tuple[int, str, str]:
        """Send ``signum``; the exit code, the rest of stdout, and stderr."""
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        rest: list[str] = []
        while (line := self.lines.get(timeout=10)) is not None:
            rest.append(line)
        err = self.proc.stderr.read() if self.proc.stderr else ""
        return code, "".join(rest), err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


# -- scan-zombies ----------------------------------------------------------------------------


async def test_scan_without_fix_finds_the_zombie_and_writes_nothing(cli: Cli) -> None:
    zombie = await make_zombie(cli)

    done = cli("scan-zombies", "--threshold", "0", "--json")

    assert done.code == 0, done.err
    summary = done.json()
    assert (summary["zombies_found"], summary["zombies_recovered"]) == (1, 0)
    assert summary["dry_run"] is True and summary["stale_threshold_seconds"] == 0
    [found] = summary["zombies"]
    assert (found["workflow_id"], found["worker_id"], found["status"]) == (
        zombie,
        "dead-worker",
        "ACTIVE",
    )
    assert await status_of(cli, zombie) == "ACTIVE"

    text = cli("scan-zombies", "--threshold", "0")
    assert text.code == 0, text.err
    for label in ("Scan time:", "Duration:", "Stale threshold:", "Zombies recovered: 0"):
        assert label in text.out
    assert "Zombies found:     1" in text.out and "Dry run:           yes" in text.out
    assert f"  {zombie}  OrderFlow  ACTIVE  step validate  worker dead-worker" in text.out
    # Fresh enough under the default threshold.
    assert cli("scan-zombies", "--json").json()["zombies_found"] == 0


async def test_fix_with_the_fail_policy_ends_the_run_failed_worker_crash(cli: Cli) -> None:
    zombie = await make_zombie(cli)

    done = cli("scan-zombies", "--threshold", "0", "--fix", "--policy", "fail", "--json")

    assert done.code == 0, done.err
    summary = done.json()
    assert (summary["zombies_found"], summary["zombies_recovered"]) == (1, 1)
    assert summary["dry_run"] is False and summary["policy"] == "fail"
    assert await status_of(cli, zombie) == "FAILED_WORKER_CRASH"
    assert "FAILED_WORKER_CRASH" in done.err  # the scanner's log line, on stderr only
    assert cli("scan-zombies", "--threshold", "0", "--json").json()["zombies_found"] == 0


def test_a_bad_policy_is_a_usage_error(cli: Cli) -> None:
    done = cli("scan-zombies", "--policy", "maybe")
    assert done.code == 2
    assert "maybe" in done.err


# -- worker ----------------------------------------------------------------------------------


async def test_worker_once_drives_the_run_the_scanner_resumed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await order_zombie(cli, monkeypatch)
    nothing = cli("worker", "--once")
    assert nothing.code == 0, nothing.err
    assert "Nothing to do" in nothing.out  # ACTIVE, but its driver is not known to be dead

    fixed = cli("scan-zombies", "--threshold", "0", "--fix", "--policy", "resume", "--json")
    assert fixed.json()["zombies_recovered"] == 1
    assert await status_of(cli, run_id) == "ACTIVE"

    done = cli("worker", "--once", "--json")

    assert done.code == 0, done.err
    data = done.json()
    assert data["driven"] == [
        {"workflow_id": run_id, "reason": "recovered", "status": "COMPLETED", "error": None}
    ]
    assert data["lost"] == 0 and data["worker_id"]
    assert await status_of(cli, run_id) == "COMPLETED"
    assert cli("worker", "--once", "--json").json()["driven"] == []


async def test_worker_runs_until_sigterm(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = await order_zombie(cli, monkeypatch)
    assert cli("scan-zombies", "--threshold", "0", "--fix", "--policy", "resume").code == 0
    worker = Process(cli, "worker", "--poll-interval", "0.2")
    try:
        worker.wait_for("Ctrl+C stops it")
        line = worker.wait_for(run_id)
        assert "recovered" in line and "COMPLETED" in line

        code, rest, err = worker.stop(signal.SIGTERM)
    finally:
        worker.kill()

    assert code == 0, err
    assert "Worker stopped." in rest
    assert await status_of(cli, run_id) == "COMPLETED"


# -- zombie-daemon ---------------------------------------------------------------------------


async def test_zombie_daemon_scans_until_ctrl_c(cli: Cli) -> None:
    zombie = await make_zombie(cli)
    daemon = Process(
        cli, "zombie-daemon", "--interval", "0.2", "--threshold", "0", "--policy", "fail"
    )
    try:
        banner = daemon.wait_for("Zombie daemon on ")
        assert "policy fail" in banner and "Ctrl+C stops it" in banner
        first = daemon.wait_for("Last scan ")
        assert "1 zombie(s) found, 1 recovered" in first
        assert any(zombie in line for line in daemon.out)
        daemon.wait_for("0 zombie(s) found")  # the next scans find nothing more

        code, rest, err = daemon.stop(signal.SIGINT)
    finally:
        daemon.kill()

    assert code == 0, err
    assert "Zombie daemon stopped." in rest
    assert "Traceback" not in err
    assert await status_of(cli, zombie) == "FAILED_WORKER_CRASH"


# -- scheduler run ---------------------------------------------------------------------------


async def test_scheduler_run_once_fires_a_due_schedule_once(cli: Cli) -> None:
    async with store_of(cli) as store:
        await store.register_scheduled_workflow(
            "nightly",
            "OrderApproval",
            "0 3 * * *",
            ORDER,
            now=datetime.now(timezone.utc) - timedelta(days=2),
        )
        schedule = await store.get_scheduled_workflow("nightly")
    assert schedule is not None

    done = cli("scheduler", "run", "--once", "--json")

    assert done.code == 0, done.err
    [started] = done.json()
    assert started["schedule_name"] == "nightly" and started["error"] is None
    assert started["status"] == "COMPLETED"  # the first step and its automate_next chain
    assert datetime.fromisoformat(started["fire_time"]) == schedule.next_run_at
    assert await status_of(cli, started["workflow_id"]) == "COMPLETED"
    again = cli("scheduler", "run", "--once")
    assert again.code == 0, again.err
    assert "No schedule is due." in again.out


def test_every_operations_command_has_an_example_in_its_help(cli: Cli) -> None:
    for command in (["scan-zombies"], ["zombie-daemon"], ["worker"], ["scheduler", "run"]):
        done = cli(*command, "--help", db=False)
        assert done.code == 0, done.err
        assert f"Example: ruvon {' '.join(command)}" in done.out
