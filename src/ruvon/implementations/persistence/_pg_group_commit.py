"""Group commit for the PostgreSQL provider: concurrent commits of different workflows, batched.

The batcher only queues, batches and settles; the provider writes (``write_batch``), so this
module knows neither the pool nor the driver.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ruvon.errors import PersistenceError
from ruvon.implementations.persistence._pg_statements import all_columns, batch_sql

__all__ = ["Commit", "GroupCommit", "Outcome", "batch_statement"]

Outcome: TypeAlias = "int | Exception"
"""What a commit's caller gets: its new version, or the error to raise."""


@dataclass(slots=True, eq=False)
class Commit:
    """One ``commit_workflow`` call: its parameters and, when batched, the future it awaits."""

    workflow_id: str
    expected_version: int
    args: list[Any]
    """The parameters of ``_columns.UPDATE_WORKFLOW`` (``_rows.update_workflow_args``)."""
    audit: list[tuple[Any, ...]]
    metrics: list[tuple[Any, ...]]
    logs: list[tuple[Any, ...]]
    """The entry rows, each starting with the workflow id (``_rows.*_rows``)."""
    future: asyncio.Future[Outcome] | None = field(default=None, repr=False)

    def settle(self, outcome: Outcome) -> None:
        """Hand the caller its outcome, unless it has one or stopped waiting (cancelled)."""
        future = self.future
        if future is not None and not future.done():
            future.set_result(outcome)


def batch_statement(batch: Sequence[Commit]) -> tuple[str, list[Any]]:
    """The statement and parameters writing ``batch`` (distinct workflow ids) at once."""
    args = [list(column) for column in zip(*(commit.args for commit in batch), strict=True)]
    kinds = (
        [row for commit in batch for row in commit.audit],
        [row for commit in batch for row in commit.metrics],
        [row for commit in batch for row in commit.logs],
    )
    for rows in kinds:
        if rows:
            args += all_columns(rows)
    return batch_sql(*(bool(rows) for rows in kinds)), args


class GroupCommit:
    """Gathers concurrent commits of different workflows into batches, one statement each.

    Callers queue their commit and wait on a future. At most ``concurrency`` flushers run; a
    caller starts one if fewer run. A flusher takes up to ``max_batch`` queued commits (oldest
    first, at most one per workflow, none of a workflow in another batch still being written),
    has the provider write them, settles their futures, and repeats until nothing is left to
    take. So an idle system writes a lone commit at once, and under load the commits that
    arrive while the batches in flight are written form the next ones. Futures carry the
    outcome (version or exception) as their result, so no exception is ever left unretrieved.

    ``write_batch`` is the provider's: it writes a batch (distinct workflow ids) and settles
    every commit in it. ``where`` names the database in error messages.
    """

    def __init__(
        self,
        write_batch: Callable[[list[Commit]], Awaitable[None]],
        where: str,
        max_batch: int,
        concurrency: int,
    ):
        self._write_batch = write_batch
        self._where = where
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._queue: deque[Commit] = deque()
        self._busy: set[str] = set()
        """Workflow ids of the batches being written."""
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def commit(self, commit: Commit) -> int:
        """Queue ``commit``; return its new version once its batch has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        commit.future = future
        self._queue.append(commit)
        if self._running < self._concurrency:
            # The flusher's first step runs after the callers already scheduled in this
            # iteration of the loop, so their commits share its first batch.
            self._running += 1
            task = loop.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A cancelled caller cancels the future: a queued commit is then dropped (nothing is
        # written); one already being written may still commit, and settle() skips it.
        outcome = await future
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _take(self) -> list[Commit]:
        batch: list[Commit] = []
        taken: set[str] = set()
        deferred: list[Commit] = []
        queue, busy = self._queue, self._busy
        while queue and len(batch) < self._max_batch:
            commit = queue.popleft()
            assert commit.future is not None
            if commit.future.done():  # its caller was cancelled while it was queued
                continue
            if commit.workflow_id in busy or commit.workflow_id in taken:
                deferred.append(commit)  # it must see the outcome of the earlier commit
                continue
            batch.append(commit)
            taken.add(commit.workflow_id)
        queue.extendleft(reversed(deferred))
        busy |= taken
        return batch

    async def _flush(self) -> None:
        try:
            while batch := self._take():
                try:
                    await self._write_batch(batch)
                except Exception as exc:  # pragma: no cover - _write_batch settles every commit
                    for commit in batch:
                        commit.settle(exc)
                except BaseException:  # cancelled by close()
                    error = PersistenceError(
                        f"PostgreSQL provider for {self._where} was closed while "
                        "the commit was being written; it may or may not have been committed."
                    )
                    for commit in batch:
                        commit.settle(error)
                    raise
                finally:
                    busy = self._busy
                    for commit in batch:
                        busy.discard(commit.workflow_id)
        finally:
            # Synchronously after the last _take(): a commit queued from now on starts a flusher.
            self._running -= 1

    async def close(self, timeout: float) -> None:
        """Let the flushers write what is queued; after ``timeout`` s, cancel them and fail
        what remains. The provider routes new commits elsewhere before calling this."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=timeout)
        while self._queue:
            self._queue.popleft().settle(
                PersistenceError(
                    f"PostgreSQL provider for {self._where} was closed before the "
                    "commit was written; nothing was written."
                )
            )
