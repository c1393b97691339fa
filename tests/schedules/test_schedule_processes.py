"""Schedule runners in separate processes race on one SQLite file or PostgreSQL database: every
due fire time starts one workflow, whose first step runs once, and every schedule advances once.

The children start, connect, report ``ready`` and wait; the test releases them all at once (one
line on each stdin), so their ``run_once`` calls overlap. Each first step appends its workflow id
to a shared file, which counts the step's runs across the processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
from ruvon.providers.persistence import PersistenceProvider
from tests.schedules.conftest import T0
from tests.schedules.steps import TICK_FILE_ENV
from tests.support.config import ConfigDir

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILDREN = 4
SCHEDULES = [f"s{i:02d}" for i in range(12)]
NOW = T0 + timedelta(hours=1, seconds=5)

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from datetime import datetime

    from ruvon.builder import WorkflowBuilder
    from ruvon.scheduler import ScheduleRunner

    async def main(registry, kind, where, schema, now):
        if kind == "sqlite":
            from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
            store = SQLitePersistenceProvider(where)
        else:
            from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
            store = PostgresPersistenceProvider(
                where, schema=schema, pool_min_size=1, pool_max_size=4
            )
        builder = WorkflowBuilder(registry, persistence_provider=store)
        runner = ScheduleRunner(builder)
        await store.initialize()
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = await runner.run_once(now=datetime.fromisoformat(now))
        await builder.close()
        return [[run.schedule_name, run.workflow_id] for run in started]

    print(json.dumps(asyncio.run(main(*sys.argv[1:]))), flush=True)
    """
)


async def _race(config: ConfigDir, tmp_path: Path, kind: str, where: str, schema: str) -> Path:
    """Run the children against the database; return the file of first-step runs."""
    script = tmp_path / "runner.py"
    script.write_text(CHILD, encoding="utf-8")
    ticks = tmp_path / "ticks.txt"
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path), TICK_FILE_ENV: str(ticks)}
    args = [str(config.registry_path), kind, where, schema, NOW.isoformat()]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
            env=env,
        )
        for _ in range(CHILDREN)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = await asyncio.wait_for(child.stdout.readline(), timeout=60)
            assert line.strip() == b"ready", line
        for child in children:  # go, all of you
            assert child.stdin is not None
            child.stdin.write(b"go\n")
        outputs = await asyncio.wait_for(
            asyncio.gather(*(child.communicate() for child in children)), timeout=120
        )
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    started: list[tuple[str, str]] = []
    for child, (stdout, stderr) in zip(children, outputs, strict=True):
        assert child.returncode == 0, stderr.decode()
        started += [tuple(run) for run in json.loads(stdout)]
    # Between them the children started each schedule's workflow once.
    assert sorted(name for name, _ in started) == SCHEDULES
    return ticks


async def _check(store: PersistenceProvider, ticks: Path) -> None:
    workflows = await store.list_workflows(limit=1000)
    assert len(workflows) == len(SCHEDULES)
    assert sorted(workflow.state["order_id"] for workflow in workflows) == SCHEDULES
    for workflow in workflows:
        assert workflow.state["visited"] == ["Tick"]
        assert workflow.current_step == "Tock"
    runs = (await asyncio.to_thread(ticks.read_text, encoding="utf-8")).split()
    assert sorted(runs) == sorted(workflow.id for workflow in workflows)  # each first step once
    for schedule in await store.list_scheduled_workflows():
        assert schedule.run_count == 1
        assert schedule.last_run_at == NOW
        assert schedule.next_run_at == T0 + timedelta(hours=2)


async def _register_all(store: PersistenceProvider) -> None:
    for name in SCHEDULES:
        await store.register_scheduled_workflow(
            name, "Nightly", "0 * * * *", {"order_id": name}, now=T0
        )


async def test_runner_processes_racing_on_sqlite(
    config: ConfigDir, sqlite_store: SQLitePersistenceProvider, tmp_path: Path
) -> None:
    await _register_all(sqlite_store)
    ticks = await _race(config, tmp_path, "sqlite", sqlite_store.db_path, "")
    await _check(sqlite_store, ticks)


@pytest.mark.postgres
async def test_runner_processes_racing_on_postgres(
    config: ConfigDir,
    postgres_store: PostgresPersistenceProvider,
    postgres_url: str,
    postgres_schema: str,
    tmp_path: Path,
) -> None:
    await _register_all(postgres_store)
    ticks = await _race(config, tmp_path, "postgres", postgres_url, postgres_schema)
    await _check(postgres_store, ticks)
