"""Fixtures of the execution-provider tests: every provider, and the thread pool alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.providers.execution import ExecutionProvider

PROVIDERS: dict[str, Callable[[], ExecutionProvider]] = {
    "sync": SyncExecutionProvider,
    "sync-in-thread": lambda: SyncExecutionProvider(run_sync_in_thread=True),
    "thread-pool": lambda: ThreadPoolExecutionProvider(max_workers=4),
}


@pytest.fixture(params=sorted(PROVIDERS))
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[ExecutionProvider]:
    """An initialized provider of each kind: the test runs once per provider."""
    execution = PROVIDERS[request.param]()
    await execution.initialize()
    yield execution
    await execution.close()


@pytest.fixture
async def pool() -> AsyncIterator[ThreadPoolExecutionProvider]:
    """An initialized thread-pool provider with four threads."""
    execution = ThreadPoolExecutionProvider(max_workers=4)
    await execution.initialize()
    yield execution
    await execution.close()


@pytest.fixture
async def sync_provider() -> AsyncIterator[SyncExecutionProvider]:
    """The sync provider, running plain functions inline."""
    execution = SyncExecutionProvider()
    await execution.initialize()
    yield execution
    await execution.close()
