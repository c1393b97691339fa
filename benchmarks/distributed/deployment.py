"""The ASYNC variant of W5's definition, and the Celery worker processes that run it.

Workers are the stock command, ``python -m celery -A ruvon.celery_app worker -P solo``, one
process each, configured through the environment (broker, database URL with the case's schema,
config directory, ``PYTHONPATH`` holding ``benchmarks/`` so that ``w5.steps`` imports). They are
waited for with ``inspect ping`` and stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import yaml
from w5.workload import CONFIG_DIR as W5_CONFIG_DIR

from ruvon.implementations.execution.celery import make_celery_app

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent
WORKFLOW_TYPE = "W5Async"
STOP_TIMEOUT_S = 15.0
LOG_PROBLEM_MARKS = ("ERROR", "CRITICAL", "Traceback", "WARNING")


def write_config(directory: Path, queue: str | None = None) -> Path:
    """W5's definition with every step ``type: ASYNC`` (same functions, same state model, all
    ``automate_next``), and its registry, written to ``directory``; returns ``directory``.

    With ``queue``, every step also names it (``queue:``); the benchmark does not need it:
    the workers get ``RUVON_CELERY_QUEUE`` (the case's queue), where they send the steps they
    chain."""
    definition: dict[str, Any] = yaml.safe_load((W5_CONFIG_DIR / "w5.yaml").read_text())
    definition["workflow_type"] = WORKFLOW_TYPE
    definition["description"] = "W5 with five sequential ASYNC steps (benchmarks/distributed)."
    for step in definition["steps"]:
        step["type"] = "ASYNC"
        step["automate_next"] = True
        if queue is not None:
            step["queue"] = queue
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "w5_async.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    registry = {
        "workflows": [
            {
                "type": WORKFLOW_TYPE,
                "description": "W5, every step ASYNC.",
                "config_file": "w5_async.yaml",
                "initial_state_model": "w5.steps.OrderState",
            }
        ]
    }
    (directory / "workflow_registry.yaml").write_text(yaml.safe_dump(registry, sort_keys=False))
    return directory


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    cpu_mark: float = 0.0

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the worker so far (0 once it has gone)."""
        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)


@dataclass
class WorkerFleet:
    """``count`` solo-pool workers on ``queue``, sharing one database schema and config."""

    count: int
    broker: str
    database_url: str
    config_dir: Path
    queue: str
    workdir: Path
    pool_max_size: int = 4
    heartbeat_seconds: float = 30.0
    loglevel: str = "WARNING"
    workers: list[WorkerProcess] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "CELERY_BROKER_URL": self.broker,
            "RUVON_DATABASE_URL": self.database_url,
            "RUVON_CELERY_QUEUE": self.queue,
            "RUVON_CONFIG_DIR": str(self.config_dir),
            "RUVON_DB_POOL_MIN_SIZE": "1",
            "RUVON_DB_POOL_MAX_SIZE": str(self.pool_max_size),
            "RUVON_HEARTBEAT_SECONDS": str(self.heartbeat_seconds),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(BENCHMARKS_DIR), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        env.pop("CELERY_RESULT_BACKEND", None)
        return env

    def start(self, timeout_s: float = 90.0) -> None:
        """Start every worker, then wait until each answers ``inspect ping``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        for number in range(self.count):
            name = f"bench{number}-{uuid.uuid4().hex[:8]}@ruvon-bench"
            log = self.workdir / f"worker-{number}.log"
            command = [
                sys.executable, "-m", "celery", "-A", "ruvon.celery_app", "worker",
                "-P", "solo", "-n", name, "-Q", self.queue,
                "--without-gossip", "--without-mingle", "-l", self.loglevel,
            ]  # fmt: skip
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            self.workers.append(WorkerProcess(name, process, log))
        app = make_celery_app(self.broker)
        deadline = time.monotonic() + timeout_s
        try:
            for worker in self.workers:
                while True:
                    if worker.process.poll() is not None:
                        raise RuntimeError(
                            f"worker {worker.name} exited at start:\n{_tail(worker.log)}"
                        )
                    if app.control.ping(destination=[worker.name], timeout=0.5):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"worker {worker.name} did not answer within {timeout_s:.0f} s:\n"
                            f"{_tail(worker.log)}"
                        )
        finally:
            app.close()

    def mark_cpu(self) -> None:
        for worker in self.workers:
            worker.cpu_mark = worker.cpu_seconds()

    def cpu_since_mark(self) -> float:
        return sum(worker.cpu_seconds() - worker.cpu_mark for worker in self.workers)

    def alive(self) -> list[str]:
        return [w.name for w in self.workers if w.process.poll() is None]

    def stop(self) -> list[str]:
        """SIGTERM every worker (a warm shutdown: the running task finishes), SIGKILL those
        still there after ``STOP_TIMEOUT_S``; returns what had to be killed."""
        for worker in self.workers:
            if worker.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for worker in self.workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.killed.append(worker.name)
                worker.process.kill()
                worker.process.wait(timeout=10)
        return self.killed

    def log_problems(self, limit: int = 20) -> list[str]:
        """Lines of the workers' logs that report a warning or an error (at most ``limit``)."""
        found = []
        for worker in self.workers:
            if not worker.log.exists():
                continue
            for line in worker.log.read_text(errors="replace").splitlines():
                if any(mark in line for mark in LOG_PROBLEM_MARKS):
                    found.append(f"{worker.name.split('@')[0]}: {line.strip()}")
        return found[:limit] + ([f"... {len(found) - limit} more"] if len(found) > limit else [])

    def log_problem_count(self) -> int:
        total = 0
        for worker in self.workers:
            if worker.log.exists():
                text = worker.log.read_text(errors="replace").splitlines()
                total += sum(1 for line in text if any(m in line for m in LOG_PROBLEM_MARKS))
        return total


@contextlib.contextmanager
def running_fleet(fleet: WorkerFleet) -> Iterator[WorkerFleet]:
    """Started workers, stopped on the way out whatever happened, their queue purged."""
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()
        purge_queue(fleet.broker, fleet.queue)


def purge_queue(broker: str, queue: str) -> None:
    """Delete the queue's list in Redis (messages nobody took, if any) and kombu's bindings of
    its exchange (named like the queue)."""
    client = redis.Redis.from_url(broker)
    try:
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    finally:
        client.close()


def fresh_queue() -> str:
    return f"ruvon-bench-{uuid.uuid4().hex[:10]}"


def redis_version(broker: str) -> str:
    """The broker's Redis version; raises ``redis.RedisError`` when it does not answer."""
    client = redis.Redis.from_url(broker, socket_timeout=3)
    try:
        return str(client.info("server").get("redis_version"))
    finally:
        client.close()


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
