"""Runs ASYNC steps on Celery workers: the step is sent as a message and the caller is free.

The provider sends one message per dispatched step to the broker (Redis) and answers
:class:`~ruvon.providers.execution.TaskDispatched`; the engine has committed the workflow
PENDING_ASYNC with the dispatch token before. A worker started with the stock Celery command
(``celery -A ruvon.celery_app worker -Q default``) receives the message, loads the workflow from
the shared database, runs the function and reports through the engine
(``WorkflowBuilder.run_dispatched_step``), which merges, commits under the version check and
goes on with the steps ``automate_next`` chains to it.

A message carries ids and the dispatch token, never the state: the worker reads the state
committed with the dispatch. Messages are JSON (never pickle), acknowledged late and requeued
when the worker running them is lost, so a killed worker's step runs again on another one.
The tasks of a PARALLEL step are one message each, so they spread over the workers; the
report that completes the set merges them, once. STANDARD steps run in the calling process.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery

from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.models import StepContext
from ruvon.providers.execution import (
    AsyncTask,
    ExecutionProvider,
    ParallelOutcome,
    ParallelTask,
    StepFunction,
    TaskDispatched,
)
from ruvon.serialization import jsonable

__all__ = [
    "DEFAULT_BROKER_URL",
    "DEFAULT_QUEUE",
    "RUN_STEP_TASK",
    "CeleryExecutionProvider",
    "celery_settings",
    "env_seconds",
    "make_celery_app",
]

RUN_STEP_TASK = "ruvon.run_dispatched_step"
"""The name of the worker task that runs a dispatched step."""

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUEUE = "default"


def env_seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds from ``environ[name]`` (``default`` when unset); ValueError
    naming the variable otherwise."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def celery_settings(
    broker_url: str | None = None,
    result_backend: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Celery configuration Ruvon's workers and senders share.

    Broker and result backend from the arguments, else ``CELERY_BROKER_URL`` /
    ``CELERY_RESULT_BACKEND`` (the broker defaults to the local Redis; no result backend: a
    step's result travels through the database). JSON only. Late acknowledgement with
    ``task_reject_on_worker_lost``: a message is removed from the broker only when its task
    returned, and a task whose worker process died is requeued at once. A message taken by a
    worker that vanished as a whole (SIGKILL of the worker, a lost machine) is handed out again
    once ``RUVON_CELERY_VISIBILITY_TIMEOUT`` seconds (default 60) have passed since it was
    taken; the other workers look for such messages every second. A task that runs longer
    than the visibility timeout is handed out a second time too: that delivery finds the
    step claimed by a live worker and is dropped (see ``ruvon.celery_app``).
    """
    env = os.environ if environ is None else environ
    broker = broker_url or env.get("CELERY_BROKER_URL", "").strip() or DEFAULT_BROKER_URL
    backend = result_backend or env.get("CELERY_RESULT_BACKEND", "").strip() or None
    visibility = env_seconds(env, "RUVON_CELERY_VISIBILITY_TIMEOUT", 60.0)
    return {
        "broker_url": broker,
        "result_backend": backend,
        "task_ignore_result": backend is None,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": DEFAULT_QUEUE,
        "task_create_missing_queues": True,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def make_celery_app(
    broker_url: str | None = None,
    result_backend: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    name: str = "ruvon",
) -> Celery:
    """A Celery application configured with :func:`celery_settings`."""
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_settings(broker_url, result_backend, environ))
    return app


class CeleryExecutionProvider:
    """Sends ASYNC steps and the tasks of PARALLEL steps to Celery workers, one message each
    (``dispatch_async_task`` answers :class:`TaskDispatched`; ``remote_parallel_tasks``); runs
    everything else in this process through ``local`` (default :class:`SyncExecutionProvider`).

    ``broker_url`` / ``result_backend`` default to ``CELERY_BROKER_URL`` /
    ``CELERY_RESULT_BACKEND``; pass ``app`` to send through an application of your own (it
    must use JSON). A step goes to its ``queue:``, else to the workflow's ``data_region``,
    else to ``default_queue`` (default: ``RUVON_CELERY_QUEUE``, else ``default``) — also when
    a worker sends the next ASYNC step of a chain. Sending happens on a thread, so a slow
    broker never blocks the event loop.
    """

    remote_parallel_tasks = True
    """The engine sends each task of a PARALLEL step through ``dispatch_async_task``; the
    worker's report that completes the set merges them (docs/architecture.md)."""

    def __init__(
        self,
        broker_url: str | None = None,
        result_backend: str | None = None,
        *,
        app: Celery | None = None,
        default_queue: str | None = None,
        local: ExecutionProvider | None = None,
    ) -> None:
        self.app = app if app is not None else make_celery_app(broker_url, result_backend)
        self.default_queue = (
            default_queue or os.environ.get("RUVON_CELERY_QUEUE", "").strip() or DEFAULT_QUEUE
        )
        self.local: ExecutionProvider = local if local is not None else SyncExecutionProvider()

    async def initialize(self) -> None:
        """Prepare the local provider. The broker connection is made on the first send."""
        await self.local.initialize()

    async def close(self) -> None:
        """Release the local provider. The broker connections stay in kombu's pool, which is
        shared by every application of the process with the same broker (closing it would
        break the others); they end with the process."""
        await self.local.close()

    async def execute_sync_step_function(
        self, func: StepFunction, state: Any, context: StepContext, **user_input: Any
    ) -> dict[str, Any]:
        return await self.local.execute_sync_step_function(func, state, context, **user_input)

    async def dispatch_async_task(
        self, task: AsyncTask, func: StepFunction, state: Any, context: StepContext
    ) -> dict[str, Any] | TaskDispatched:
        """Send the step to a worker and answer :class:`TaskDispatched` (the task id is the
        dispatch token). The message carries the workflow id, the step, the token and the
        keyword arguments of the call (JSON); the worker reads the state from the database."""
        task_id = task.token or uuid.uuid4().hex
        kwargs = {
            "workflow_id": task.workflow_id,
            "step_index": task.step_index,
            "step_name": task.step_name,
            "token": task.token,
            "user_input": jsonable(dict(task.user_input)),
        }
        queue = task.queue or self.default_queue
        await asyncio.to_thread(
            self.app.send_task, RUN_STEP_TASK, kwargs=kwargs, queue=queue, task_id=task_id
        )
        return TaskDispatched(task_id=task_id)

    async def dispatch_parallel_tasks(
        self,
        tasks: Sequence[ParallelTask],
        state: Any,
        context_factory: Callable[[ParallelTask], StepContext],
        *,
        timeout_seconds: float | None = None,
    ) -> list[ParallelOutcome]:
        return await self.local.dispatch_parallel_tasks(
            tasks, state, context_factory, timeout_seconds=timeout_seconds
        )
