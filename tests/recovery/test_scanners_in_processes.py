"""Zombie scanners in several processes on one database (SQLite file, PostgreSQL) recover each
zombie exactly once: the recovery is a conditional write the database arbitrates."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider, WorkflowRecord

SCANNER = textwrap.dedent(
    """
    import asyncio, os, sys
    from ruvon.settings import persistence_from_url
    from ruvon.zombie_scanner import ZombieScanner

    async def main(url, schema, ready, go):
        provider = persistence_from_url(url, **({"schema": schema} if schema else {}))
        await provider.initialize()
        open(ready, "w").close()
        while not os.path.exists(go):
            await asyncio.sleep(0.001)
        summary = await ZombieScanner(provider, stale_threshold_seconds=0).scan_and_recover()
        print(summary["zombies_recovered"], flush=True)
        await provider.close()

    asyncio.run(main(*sys.argv[1:3], sys.argv[3], sys.argv[4]))
    """
)

PROCESSES = 3
ZOMBIES = 20


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scan.db'}", None
    url: str = request.getfixturevalue("postgres_url")
    schema: str = request.getfixturevalue("postgres_schema")
    return url, schema


def _provider(url: str, schema: str | None) -> PersistenceProvider:
    if schema is not None:
        return PostgresPersistenceProvider(url, schema=schema, pool_min_size=1, pool_max_size=2)
    return SQLitePersistenceProvider(url.removeprefix("sqlite:///"))


async def test_scanners_in_several_processes_recover_each_zombie_once(
    tmp_path: Path, database: tuple[str, str | None]
) -> None:
    url, schema = database
    provider = _provider(url, schema)
    await provider.initialize()
    ids = [str(uuid.uuid4()) for _ in range(ZOMBIES)]
    for workflow_id in ids:
        record = WorkflowRecord(
            workflow_id, "Shipment", None, {}, "builtins.dict", "ACTIVE", {}, "Charge", 1
        )
        await provider.create_workflow(record)
        await provider.upsert_heartbeat(workflow_id, "dead-worker", "Charge")

    recovered = _race(url, schema, tmp_path)

    assert sum(recovered) == ZOMBIES
    try:
        for workflow_id in ids:
            stored = await provider.load_workflow(workflow_id)
            assert stored is not None
            assert (stored.status, stored.version) == ("FAILED_WORKER_CRASH", 2)
            detected = await provider.get_audit_log(workflow_id, event_type="ZOMBIE_DETECTED")
            assert len(detected) == 1
            assert len(await provider.get_execution_logs(workflow_id)) == 1
        assert await provider.get_stale_heartbeats(0) == []
    finally:
        await provider.close()


def _race(url: str, schema: str | None, tmp_path: Path) -> list[int]:
    """Start the scanner processes, let them go at once; what each recovered."""
    go = tmp_path / "go"
    children = []
    try:
        for n in range(PROCESSES):
            ready = tmp_path / f"ready-{n}"
            args = [sys.executable, "-c", SCANNER, url, schema or "", str(ready), str(go)]
            children.append(
                (ready, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            )
        deadline = time.monotonic() + 60
        for ready, child in children:
            while not ready.exists():
                assert child.poll() is None, child.communicate()[1].decode()
                assert time.monotonic() < deadline, "a scanner process never got ready"
                time.sleep(0.01)
        go.touch()  # all at once
        recovered = []
        for _, child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err.decode()
            recovered.append(int(out.decode().split()[-1]))
        return recovered
    finally:
        for _, child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
