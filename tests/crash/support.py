"""What the crash tests share: a provider on the child's database, and a child process run
until it signals (by a marker file) that it is where the test wants it, then SIGKILLed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider

__all__ = ["lines", "open_provider", "outlive_lease", "run_until_killed"]


def open_provider(url: str, schema: str | None) -> PersistenceProvider:
    """A provider on the database of :func:`~tests.crash.conftest.database`."""
    if schema is not None:
        return PostgresPersistenceProvider(url, schema=schema, pool_min_size=1, pool_max_size=2)
    return SQLitePersistenceProvider(url.removeprefix("sqlite:///"))


async def outlive_lease(provider: PersistenceProvider, workflow_id: str) -> str:
    """Wait until the lease the killed driver held on the run has run out (its end is in the
    row: a bounded wait for a known time); return the dead driver's owner name."""
    record = await provider.load_workflow(workflow_id)
    assert record is not None and record.lease_owner is not None
    assert record.lease_expires_at is not None
    wait = (record.lease_expires_at - datetime.now(timezone.utc)).total_seconds()
    assert wait < 30, f"the killed driver's lease runs for {wait:.1f} s more"
    await asyncio.sleep(max(wait, 0.0) + 0.05)
    return record.lease_owner


def lines(path: Path) -> list[str]:
    """The words of a side-effect file (empty when it does not exist)."""
    return path.read_text().split() if path.exists() else []


def run_until_killed(
    args: list[str], env: dict[str, str], work: Path, marker: str, where: str
) -> int:
    """Start the child, wait (bounded) until it writes ``work/marker`` — it is then ``where``
    — SIGKILL it and return its exit code."""
    log = work / "child.log"
    with (
        log.open("w") as errors,
        subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=errors) as child,
    ):
        deadline = time.monotonic() + 60
        try:
            while not (work / marker).exists():
                assert child.poll() is None, f"child exited early: {log.read_text()}"
                assert time.monotonic() < deadline, f"the child never reached {where}"
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
            return child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
