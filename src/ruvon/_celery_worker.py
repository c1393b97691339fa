"""What a Celery worker process of Ruvon holds and does: its builder and providers, made when
the process starts and closed when it stops, and the task that runs a dispatched step.

Celery calls tasks synchronously, from the pool's process or thread; the engine is async. So a
worker process keeps one event loop on a thread of its own, with the builder and the database
pool bound to it, and every task hands its coroutine to that loop. This works alike for the
prefork (the loop is made in each child, after the fork), solo and threads pools.

Two deliveries of one dispatch never run its function at the same time: the worker claims the
dispatch's row of the ``tasks`` table (one conditional write) before it runs anything, and
renews the claim while the function runs. A second delivery (a duplicated or redelivered
message) that finds the step run (or applied) is dropped; one that finds the claim held by a
live worker is sent again for later (``retry`` with a countdown of half the claim time), so a
copy of the message lives on while the step runs: if that worker dies, the copy takes the step
over once the claim has gone stale (``RUVON_CELERY_CLAIM_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery, signals

from ruvon.builder import WorkflowBuilder
from ruvon.errors import PersistenceError, WorkflowNotFoundError
from ruvon.implementations.execution.celery import (
    RUN_STEP_TASK,
    CeleryExecutionProvider,
    env_seconds,
)
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.persistence import PersistenceProvider
from ruvon.scheduler import ScheduleRunner
from ruvon.settings import database_url, persistence_from_url

__all__ = ["FIRE_SCHEDULES_TASK", "WorkerRuntime", "install"]

FIRE_SCHEDULES_TASK = "ruvon.fire_due_schedules"

logger = logging.getLogger("ruvon.celery")

T = TypeVar("T")


class WorkerRuntime:
    """The builder, providers and event loop of one worker process, configured from the
    environment: ``RUVON_DATABASE_URL`` (else the default SQLite file), ``RUVON_CONFIG_DIR``
    (else ``./config``), ``RUVON_DB_POOL_MIN_SIZE``/``RUVON_DB_POOL_MAX_SIZE`` (PostgreSQL
    pool, default 1/4), ``RUVON_HEARTBEAT_SECONDS`` (default 30) and
    ``RUVON_CELERY_CLAIM_SECONDS`` (default 60: a claim not renewed for so long belongs to a
    dead worker)."""

    def __init__(self, app: Celery, environ: Mapping[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.app = app
        self.url = database_url(env)
        directory = env.get("RUVON_CONFIG_DIR", "").strip()
        self.config_dir: Path | None = Path(directory) if directory else None
        if self.config_dir is None and Path("config").is_dir():
            self.config_dir = Path("config")
        self.pool = (
            int(env.get("RUVON_DB_POOL_MIN_SIZE", "1")),
            int(env.get("RUVON_DB_POOL_MAX_SIZE", "4")),
        )
        self.heartbeat_seconds = env_seconds(env, "RUVON_HEARTBEAT_SECONDS", 30.0)
        self.claim_seconds = env_seconds(env, "RUVON_CELERY_CLAIM_SECONDS", 60.0)
        self.worker_id = f"celery@{socket.gethostname()}:{os.getpid()}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._builder: WorkflowBuilder | None = None
        self._store: PersistenceProvider | None = None
        self._lock = threading.Lock()

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop and open the builder's providers. Idempotent."""
        with self._lock:
            if self._loop is not None:
                return
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="ruvon-worker-loop", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        self.run(self._open())
        logger.info("Ruvon worker %s ready on %s", self.worker_id, self.url)

    async def _open(self) -> None:
        options: dict[str, Any] = {}
        if self.url.split(":", 1)[0].lower().startswith("postgres"):
            options = {"pool_min_size": self.pool[0], "pool_max_size": self.pool[1]}
        store = persistence_from_url(self.url, **options)
        await store.initialize()
        # Plain step functions run on threads: the loop keeps the heartbeat and the claim fresh.
        execution = CeleryExecutionProvider(app=self.app, local=ThreadPoolExecutionProvider())
        await execution.initialize()
        self._store = store
        self._builder = WorkflowBuilder(
            config_dir=self.config_dir,
            persistence_provider=store,
            execution_provider=execution,
            heartbeat_interval_seconds=self.heartbeat_seconds,
        )

    def close(self) -> None:
        """Close the builder's providers and stop the loop. Idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=30)
        except Exception:  # closing is best effort: the process is going away
            logger.exception("Closing the Ruvon worker's providers failed")
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)

    async def _close(self) -> None:
        builder, self._builder = self._builder, None
        store, self._store = self._store, None
        if builder is not None:
            await builder.close()  # its heartbeat task; the providers are closed here
            await builder.execution_provider.close()
        if store is not None:
            await store.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the worker's loop and wait for its result."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the Ruvon worker runtime is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    # -- the task ------------------------------------------------------------------------------

    async def run_step(
        self,
        workflow_id: str,
        step_index: int,
        step_name: str,
        token: str,
        user_input: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Claim the dispatch, run the step's function and report it (see the module)."""
        builder, store = self._builder, self._store
        assert builder is not None and store is not None
        try:
            record = await store.create_task_record(
                workflow_id,
                step_name,
                step_index,
                idempotency_key=token,
                task_data={"token": token},
            )
        except WorkflowNotFoundError:
            logger.warning("Dropped step %s: workflow %s does not exist", step_name, workflow_id)
            return {"outcome": "dropped", "reason": "workflow not found"}
        claimed = await store.claim_task(
            record.task_id, self.worker_id, stale_after_seconds=self.claim_seconds
        )
        if claimed is None:
            stored = await store.get_task_record(record.task_id)
            if stored is not None and stored.status in ("COMPLETED", "FAILED"):
                logger.info(
                    "Dropped a delivery of step %s of workflow %s: already run",
                    step_name,
                    workflow_id,
                )
                return {"outcome": "dropped", "reason": "already run"}
            # Another worker runs it now. The message is kept (sent again later): if that
            # worker dies, this copy takes the step over once its claim has gone stale.
            return {"outcome": "busy"}
        renewing = asyncio.create_task(self._renew(store, record.task_id))
        try:
            applied = await builder.run_dispatched_step(
                workflow_id, step_index, token, user_input=user_input
            )
        except BaseException as exc:
            await _quietly(
                store.update_task_status(record.task_id, "FAILED", error_message=str(exc))
            )
            raise
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        await store.update_task_status(record.task_id, "COMPLETED", result={"applied": applied})
        return {"outcome": "applied" if applied else "dropped"}

    async def fire_schedules(self) -> dict[str, Any]:
        """Start the workflows of the schedules that are due (``ScheduleRunner.run_once``):
        what Celery beat's periodic task does. Several beats or workers firing at once start
        each due run once (the runs' idempotency keys)."""
        assert self._builder is not None
        started = await ScheduleRunner(self._builder).run_once()
        return {"started": [run.workflow_id for run in started]}

    async def _renew(self, store: PersistenceProvider, task_id: str) -> None:
        """Keep the claim fresh while the function runs."""
        while True:
            await asyncio.sleep(self.claim_seconds / 3)
            try:
                await store.claim_task(
                    task_id, self.worker_id, stale_after_seconds=self.claim_seconds
                )
            except PersistenceError:
                logger.warning("Renewing the claim of task %s failed", task_id, exc_info=True)


async def _quietly(write: Awaitable[Any]) -> None:
    try:
        await write
    except Exception:
        logger.warning("Recording a failed task failed", exc_info=True)


def install(app: Celery) -> WorkerRuntime:
    """Register Ruvon's task on ``app`` and tie a :class:`WorkerRuntime` to the worker's life
    cycle: started when a worker process starts (or by its first task), closed when it stops."""
    runtime = WorkerRuntime(app)

    @app.task(  # type: ignore[untyped-decorator]
        name=RUN_STEP_TASK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(PersistenceError,),
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=20,
    )
    def run_dispatched_step(
        task: Any,
        workflow_id: str,
        step_index: int,
        step_name: str,
        token: str,
        user_input: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        runtime.start()
        done = runtime.run(runtime.run_step(workflow_id, step_index, step_name, token, user_input))
        if done["outcome"] == "busy":
            raise task.retry(countdown=runtime.claim_seconds / 2, max_retries=None)
        return done

    @app.task(name=FIRE_SCHEDULES_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def fire_due_schedules() -> dict[str, Any]:
        runtime.start()
        return runtime.run(runtime.fire_schedules())

    interval = env_seconds(os.environ, "RUVON_SCHEDULE_INTERVAL", 30.0)
    app.conf.beat_schedule = {
        "ruvon-fire-due-schedules": {
            "task": FIRE_SCHEDULES_TASK,
            "schedule": interval,
            # A tick nobody took in time is dropped: the next one fires the same schedules.
            "options": {"expires": interval},
        }
    }

    def started(**_: Any) -> None:
        runtime.start()

    def stopped(**_: Any) -> None:
        runtime.close()

    signals.worker_process_init.connect(started, weak=False)
    signals.worker_process_shutdown.connect(stopped, weak=False)
    signals.worker_shutdown.connect(stopped, weak=False)
    return runtime
