"""Real Celery workers for the tests: ``celery -A ruvon.celery_app worker`` processes started
from fixtures on the local Redis (127.0.0.1:6379) and a PostgreSQL schema of their own,
waited for with ``inspect ping`` and stopped by pid.

Each test gets fresh queue names, so workers and messages of other tests never meet. Redis
must be running: a test that cannot reach it fails with the reason (a developer without Redis
may set ``RUVON_TEST_SKIP_REDIS=1`` to skip these tests instead; CI never does).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from ruvon.builder import WorkflowBuilder
from ruvon.implementations.execution.celery import CeleryExecutionProvider, make_celery_app
from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider

HERE = Path(__file__).parent
REDIS_URL_ENV = "RUVON_TEST_REDIS_URL"
REDIS_SKIP_ENV = "RUVON_TEST_SKIP_REDIS"
BROKER = os.environ.get(REDIS_URL_ENV, "redis://127.0.0.1:6379/9")

CONTROL = make_celery_app(BROKER)
"""The tests' own client of the broker: pings workers, sends copies of messages. Never closed:
kombu's connection pool is shared by every application of the process with the same broker."""

# Short times, so that recovery happens within seconds in the tests.
WORKER_ENV = {
    "RUVON_CELERY_VISIBILITY_TIMEOUT": "3",
    "RUVON_CELERY_CLAIM_SECONDS": "2",
    "RUVON_HEARTBEAT_SECONDS": "0.5",
}

WORKFLOWS = {
    "AsyncOrder": """
        workflow_type: AsyncOrder
        workflow_version: "1"
        initial_state_model: celery_steps.OrderState
        steps:
          - name: Validate
            function: celery_steps.validate
            automate_next: true
          - name: Charge
            type: ASYNC
            function: celery_steps.charge
            automate_next: true
          - name: Ship
            type: ASYNC
            function: celery_steps.ship
            automate_next: true
          - name: Notify
            type: ASYNC
            function: celery_steps.notify
            queue: {notify_queue}
            automate_next: true
          - name: Finish
            function: celery_steps.finish
        """,
    "ParentOrder": """
        workflow_type: ParentOrder
        workflow_version: "1"
        initial_state_model: celery_steps.OrderState
        steps:
          - name: Validate
            function: celery_steps.validate
            automate_next: true
          - name: Charge
            type: ASYNC
            function: celery_steps.charge
            automate_next: true
          - name: Child
            type: SUB_WORKFLOW
            target_workflow_type: AsyncOrder
            initial_data_template:
              order_id: "{{{{ state.order_id }}}}-child"
              amount: "{{{{ state.charged_amount }}}}"
            automate_next: true
          - name: Finish
            function: celery_steps.finish
        """,
    "ParallelOrder": """
        workflow_type: ParallelOrder
        workflow_version: "1"
        initial_state_model: celery_steps.OrderState
        steps:
          - name: Validate
            function: celery_steps.validate
            automate_next: true
          - name: Pack
            type: PARALLEL
            merge_strategy: DEEP
            tasks:
              - name: Pick
                function_path: celery_steps.part
              - name: Wrap
                function_path: celery_steps.part
              - name: Label
                function_path: celery_steps.part
              - name: Weigh
                function_path: celery_steps.part
            automate_next: true
          - name: Finish
            function: celery_steps.finish
        """,
}


def _redis_or_fail() -> None:
    if os.environ.get(REDIS_SKIP_ENV) == "1":
        pytest.skip(f"{REDIS_SKIP_ENV}=1: Redis tests skipped by the developer")
    try:
        redis.Redis.from_url(BROKER, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is unreachable at {BROKER} ({exc}). Start it, point {REDIS_URL_ENV} at a "
            f"server, or set {REDIS_SKIP_ENV}=1 to skip the Celery tests.",
            pytrace=False,
        )


@dataclass
class Deployment:
    """A project directory, a database schema and queue names shared by the test's workers
    and the test's own builder."""

    root: Path
    database_url: str
    schema: str
    base_url: str
    queue: str
    notify_queue: str
    record: Path
    workers: list[Worker] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            **WORKER_ENV,
            "CELERY_BROKER_URL": BROKER,
            "RUVON_CELERY_QUEUE": self.queue,  # where workers send the ASYNC steps they chain
            "RUVON_DATABASE_URL": self.database_url,
            "RUVON_CONFIG_DIR": str(self.root / "config"),
            "RUVON_TEST_RECORD": str(self.record),
            "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
        }
        env.pop("CELERY_RESULT_BACKEND", None)
        return env

    def start_worker(self, *queues: str) -> Worker:
        """Start a worker process (solo pool: the task runs in the process the test may
        kill) on ``queues`` (default: the deployment's two queues); return once it answers
        ``inspect ping``."""
        name = f"w{len(self.workers)}-{uuid.uuid4().hex[:8]}@ruvon-test"
        log = self.root / f"{name.split('@')[0]}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "ruvon.celery_app", "worker",
            "-P", "solo", "-n", name, "-Q", ",".join(queues or (self.queue, self.notify_queue)),
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=self.root, env=self.env(), stdout=out, stderr=subprocess.STDOUT
            )
        worker = Worker(name, process, log)
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    def runs(self) -> list[dict[str, Any]]:
        """Every completed function run recorded so far."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def starts(self) -> list[dict[str, Any]]:
        """Every function start recorded so far (a killed run has a start and no end)."""
        path = Path(f"{self.record}.started")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def builder(self, **kwargs: Any) -> WorkflowBuilder:
        """A builder in the test's process, sending ASYNC steps to the deployment's queue."""
        return WorkflowBuilder(
            config_dir=self.root / "config",
            persistence_provider=PostgresPersistenceProvider(
                self.base_url, schema=self.schema, pool_min_size=1, pool_max_size=4
            ),
            execution_provider=CeleryExecutionProvider(app=CONTROL, default_queue=self.queue),
            **kwargs,
        )


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log.read_text()}")
            if CONTROL.control.ping(destination=[self.name], timeout=0.5):
                return
        raise AssertionError(f"worker {self.name} did not answer:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, nothing flushed."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def redis_broker() -> str:
    _redis_or_fail()
    return BROKER


@pytest.fixture
async def deployment(
    redis_broker: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Deployment]:
    """A project with the test workflows, a fresh PostgreSQL schema, fresh queue names; the
    workers started by the test are stopped afterwards (and their queues purged)."""
    suffix = uuid.uuid4().hex[:10]
    root = tmp_path / "project"
    (root / "config").mkdir(parents=True)
    shutil.copy(HERE / "celery_steps.py", root / "celery_steps.py")
    monkeypatch.syspath_prepend(str(root))  # the test's own builder imports the steps too
    queue, notify_queue = f"ruvon-test-{suffix}", f"ruvon-test-notify-{suffix}"
    registry = ["workflows:"]
    for name, text in WORKFLOWS.items():
        (root / "config" / f"{name}.yaml").write_text(
            textwrap.dedent(text).format(notify_queue=notify_queue)
        )
        registry += [f"  - type: {name}", f"    config_file: {name}.yaml"]
    (root / "config" / "workflow_registry.yaml").write_text("\n".join(registry) + "\n")
    schema = f"ruvon_celery_{suffix}"
    await _admin(postgres_url, f'CREATE SCHEMA "{schema}"')
    migrated = PostgresPersistenceProvider(postgres_url, schema=schema, pool_max_size=1)
    await migrated.initialize()  # before any worker opens it
    await migrated.close()
    monkeypatch.setenv("RUVON_TEST_RECORD", str(tmp_path / "runs.jsonl"))  # steps run here too
    found = Deployment(
        root=root,
        database_url=f"{postgres_url}?search_path={schema}",
        schema=schema,
        base_url=postgres_url,
        queue=queue,
        notify_queue=notify_queue,
        record=tmp_path / "runs.jsonl",
    )
    try:
        yield found
    finally:
        for worker in found.workers:
            worker.stop()
        client = redis.Redis.from_url(BROKER)
        client.delete(queue, notify_queue)
        client.close()
        await _admin(postgres_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def eventually(
    check: Callable[[], Any], *, timeout: float = 60.0, what: str = "the condition"
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def worker_logs(deployment: Deployment) -> Iterator[str]:
    for worker in deployment.workers:
        yield f"--- {worker.name}\n{worker.log.read_text()}"
