"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import ruvon

EXPECTED = {
    "ALLOWED_TRANSITIONS",
    "ConcurrencyConflictError",
    "DefinitionError",
    "DefinitionIssue",
    "DefinitionWarning",
    "DuplicateIdempotencyKeyError",
    "ExpressionError",
    "HttpStepError",
    "IdempotencyConflictError",
    "InvalidInputError",
    "InvalidTransitionError",
    "JumpTargetError",
    "MergeConflictError",
    "MergeConflictBehavior",
    "MergeStrategy",
    "NoRouteMatchedError",
    "ParallelExecutionError",
    "PersistenceError",
    "RuvonError",
    "SagaWorkflowException",
    "StartSubWorkflowDirective",
    "StateValidationError",
    "StepContext",
    "StepKind",
    "StepNotImplementedError",
    "StepResultError",
    "StepTimeoutError",
    "StoredStateError",
    "TaskNotFoundError",
    "TemplateError",
    "UnknownWorkflowTypeError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowJumpDirective",
    "WorkflowLeasedError",
    "WorkflowNotFoundError",
    "WorkflowObserver",
    "WorkflowPauseDirective",
    "WorkflowStateError",
    "WorkflowStatus",
    "WorkflowStep",
    "__version__",
}


def test_all_is_pinned() -> None:
    assert set(ruvon.__all__) == EXPECTED
    for name in ruvon.__all__:
        assert hasattr(ruvon, name), name


def test_documented_import_paths() -> None:
    from ruvon.builder import WorkflowBuilder
    from ruvon.implementations.execution.sync import SyncExecutionProvider, SyncExecutor
    from ruvon.implementations.expression_evaluator.simple import SimpleExpressionEvaluator
    from ruvon.implementations.observability.logging import LoggingObserver
    from ruvon.implementations.observability.noop import NoopObserver
    from ruvon.implementations.persistence.memory import (
        InMemoryPersistence,
        InMemoryPersistenceProvider,
        MemoryPersistenceProvider,
    )
    from ruvon.implementations.persistence.postgres import PostgresPersistenceProvider
    from ruvon.implementations.persistence.sqlite import SQLitePersistenceProvider
    from ruvon.implementations.templating.jinja2 import Jinja2TemplateEngine
    from ruvon.models import (
        MergeConflictBehavior,
        MergeStrategy,
        SagaWorkflowException,
        StartSubWorkflowDirective,
        StepContext,
        WorkflowJumpDirective,
        WorkflowPauseDirective,
        WorkflowStep,
    )
    from ruvon.providers.execution import ExecutionProvider
    from ruvon.providers.expression_evaluator import ExpressionEvaluator
    from ruvon.providers.observer import NoOpObserver, WorkflowObserver
    from ruvon.providers.persistence import PersistenceProvider
    from ruvon.providers.template_engine import TemplateEngine
    from ruvon.testing.harness import TestHarness, WorkflowTestHarness
    from ruvon.utils.serialization import deserialize, serialize
    from ruvon.workflow import Workflow

    assert WorkflowBuilder is ruvon.WorkflowBuilder and Workflow is ruvon.Workflow
    assert SyncExecutor is SyncExecutionProvider
    assert InMemoryPersistence is InMemoryPersistenceProvider is MemoryPersistenceProvider
    assert NoOpObserver is NoopObserver and TestHarness is WorkflowTestHarness
    assert issubclass(NoopObserver, WorkflowObserver)
    assert isinstance(MemoryPersistenceProvider(), PersistenceProvider)
    assert isinstance(SQLitePersistenceProvider(":memory:"), PersistenceProvider)
    assert isinstance(
        PostgresPersistenceProvider("postgresql://x@127.0.0.1/y"), PersistenceProvider
    )
    assert isinstance(SyncExecutionProvider(), ExecutionProvider)
    assert isinstance(SimpleExpressionEvaluator(), ExpressionEvaluator)
    assert isinstance(Jinja2TemplateEngine(), TemplateEngine)
    assert deserialize(serialize({"a": 1})) == {"a": 1}
    assert LoggingObserver and StepContext and WorkflowStep and MergeStrategy
    assert MergeConflictBehavior and SagaWorkflowException and StartSubWorkflowDirective
    assert WorkflowJumpDirective and WorkflowPauseDirective


def test_import_has_no_side_effects() -> None:
    """``import ruvon`` loads no optional dependency and installs no event-loop policy."""
    code = (
        "import asyncio, sys; policy = asyncio.get_event_loop_policy(); import ruvon; "
        "assert asyncio.get_event_loop_policy() is policy; "
        "loaded = {'asyncpg', 'celery', 'fastapi', 'httpx', 'uvloop'} & set(sys.modules); "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
