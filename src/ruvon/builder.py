"""``WorkflowBuilder``: creates and loads workflows with the providers it is given (the SDK's
composition root). Where definitions come from (the registry, the workflow files, compiling them
once) is :class:`~ruvon.definition.source.DefinitionSource`."""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ruvon._builder_children import ChildStarts
from ruvon._builder_definitions import DefinitionAccess
from ruvon.definition.compiled import CompiledWorkflow
from ruvon.definition.source import DefinitionSource
from ruvon.errors import (
    IdempotencyConflictError,
    WorkflowNotFoundError,
)
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.expression_evaluator.simple import SimpleExpressionEvaluator
from ruvon.implementations.http import default_http_client
from ruvon.implementations.secrets.env import EnvironmentSecrets
from ruvon.implementations.templating.jinja2 import Jinja2TemplateEngine
from ruvon.lease import RunLease
from ruvon.models import WorkflowStatus
from ruvon.observing import ObserverHub
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.http import HttpClient
from ruvon.providers.persistence import AuditEvent, PersistenceProvider, WorkflowRecord
from ruvon.providers.secrets import SecretsProvider
from ruvon.providers.services import NO_SERVICES, StepServices
from ruvon.providers.template_engine import TemplateEngine
from ruvon.serialization import jsonable
from ruvon.settings import persistence_from_url
from ruvon.state import dump_state, new_state
from ruvon.step_monitor import StepMonitor
from ruvon.workflow import Workflow

__all__ = ["WorkflowBuilder"]

logger = logging.getLogger("ruvon.builder")

_ENVIRONMENT_SECRETS = EnvironmentSecrets()
"""Where templates' ``secrets`` come from by default: environment variables."""


def _payload_digest(workflow_type: str, initial_data: Mapping[str, Any] | None) -> str:
    """What an idempotency key is stored with: a digest of the type and the initial data as
    given (before defaults are filled in, so a default_factory does not make it differ)."""
    try:
        payload = orjson.dumps(
            [workflow_type, initial_data or {}],
            default=lambda value: jsonable(value),
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        )
    except TypeError:
        payload = repr((workflow_type, initial_data)).encode()
    return hashlib.sha256(payload).hexdigest()


class WorkflowBuilder(DefinitionAccess, ChildStarts):
    """Creates and loads workflows.

    All of these work::

        WorkflowBuilder()                                   # ./config/workflow_registry.yaml
        WorkflowBuilder("config/workflow_registry.yaml")
        WorkflowBuilder(config_dir="config/")
        WorkflowBuilder(workflow_registry={"T": {"config_file": "t.yaml", ...}}, config_dir=...)
        WorkflowBuilder(config_dir="config/", persistence_provider=..., execution_provider=...)

    Providers given here are the defaults of every workflow the builder creates or loads; each
    call may override them. Without a persistence provider the builder uses the database named
    by ``RUVON_DATABASE_URL`` (default: the SQLite file ``ruvon.db``).
    """

    def __init__(
        self,
        workflow_registry: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        expression_evaluator_cls: type[Any] = SimpleExpressionEvaluator,
        template_engine_cls: type[Any] = Jinja2TemplateEngine,
        config_dir: str | os.PathLike[str] | None = None,
        *,
        persistence_provider: PersistenceProvider | None = None,
        execution_provider: ExecutionProvider | None = None,
        workflow_observer: object | None = None,
        observer: object | None = None,
        http_client: HttpClient | None = None,
        secrets_provider: SecretsProvider | None = None,
        heartbeat_interval_seconds: float | None = 30.0,
        retry_park_after_seconds: float | None = 30.0,
        lease_seconds: float | None = None,
    ) -> None:
        self.expression_evaluator_cls = expression_evaluator_cls
        self.template_engine_cls = template_engine_cls
        evaluator: ExpressionEvaluator = expression_evaluator_cls()
        self.template_engine: TemplateEngine = template_engine_cls()
        self.persistence_provider = persistence_provider
        self.execution_provider: ExecutionProvider = execution_provider or SyncExecutionProvider()
        self.workflow_observer = workflow_observer if workflow_observer is not None else observer
        self.http_client = http_client
        """The HTTP steps' client (``None``: a default ``HttpxClient``, made when needed)."""
        self.secrets_provider = secrets_provider
        """Where templates' ``secrets`` come from (``None``: environment variables)."""
        self.step_monitor = (
            None if heartbeat_interval_seconds is None else StepMonitor(heartbeat_interval_seconds)
        )
        """Writes heartbeats for steps that outlive the interval (``None``: disabled)."""
        self.retry_park_after_seconds = retry_park_after_seconds
        """A retry backoff at least this long parks the run (``Workflow.retry_at``) instead of
        holding the process (``None``: never)."""
        interval = 30.0 if heartbeat_interval_seconds is None else heartbeat_interval_seconds
        self.lease_seconds = 2 * interval if lease_seconds is None else float(lease_seconds)
        """How long a driver's lease on a run holds without renewal (default: twice the
        heartbeat interval, which renews the lease of long steps every half interval)."""
        if self.lease_seconds <= interval:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must be longer than the heartbeat "
                f"interval ({interval:g}), which renews the leases of long steps."
            )
        self._initialized: set[int] = set()
        self._services_cache = NO_SERVICES
        self._definitions = DefinitionSource(workflow_registry, config_dir, evaluator)
        """The registry, the config directory and the compiled definitions."""

    # -- workflows -------------------------------------------------------------------------

    async def _open(self, resource: object | None) -> None:
        """Call a provider's ``initialize()`` once, whether it is a default or per call."""
        if resource is None or id(resource) in self._initialized:
            return
        initialize = getattr(resource, "initialize", None)
        if callable(initialize):
            outcome = initialize()
            if inspect.isawaitable(outcome):
                await outcome
        self._initialized.add(id(resource))

    async def _persistence(
        self,
        provider: PersistenceProvider | None,
        execution: ExecutionProvider | None = None,
        observer: object | None = None,
    ) -> PersistenceProvider:
        """The persistence provider to use, with it and the other providers initialized."""
        chosen = provider or self.persistence_provider
        if chosen is None:
            chosen = self.persistence_provider = persistence_from_url()
        await self._open(chosen)
        await self._open(execution or self.execution_provider)
        await self._open(observer if observer is not None else self.workflow_observer)
        return chosen

    def _workflow(
        self,
        compiled: CompiledWorkflow,
        record: WorkflowRecord,
        persistence: PersistenceProvider,
        execution: ExecutionProvider | None,
        observer: object | None,
        evaluator_cls: type[Any] | None = None,
        template_cls: type[Any] | None = None,
        state: Any = None,
        *,
        validate_state: bool = True,
        lease: RunLease | None = None,
    ) -> Workflow:
        return Workflow.from_record(
            compiled,
            record,
            persistence_provider=persistence,
            execution_provider=execution or self.execution_provider,
            expression_evaluator=evaluator_cls() if evaluator_cls else self.expression_evaluator,
            template_engine=template_cls() if template_cls else self.template_engine,
            workflow_observer=observer if observer is not None else self.workflow_observer,
            state=state,
            validate_state=validate_state,
            services=self._services(),
            lease=lease,
        )

    def _services(self) -> StepServices:
        """What step kinds get beyond the workflow's providers (one bundle per builder state)."""
        services = StepServices(
            http_client=self.http_client or default_http_client(),
            secrets=self.secrets_provider or _ENVIRONMENT_SECRETS,
            starter=self,
            monitor=self.step_monitor,
            retry_park_after_seconds=self.retry_park_after_seconds,
            lease_seconds=self.lease_seconds,
            compiler=self._definitions.compile_snapshot,
        )
        if services != self._services_cache:
            self._services_cache = services
        return self._services_cache

    async def create_workflow(
        self,
        workflow_type: str,
        initial_data: Mapping[str, Any] | None = None,
        *,
        persistence_provider: PersistenceProvider | None = None,
        execution_provider: ExecutionProvider | None = None,
        workflow_observer: object | None = None,
        workflow_builder: WorkflowBuilder | None = None,
        expression_evaluator_cls: type[Any] | None = None,
        template_engine_cls: type[Any] | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        data_region: str | None = None,
        priority: int | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        workflow_id: str | None = None,
        parent_execution_id: str | None = None,
        start: bool = False,
        actor: str | None = None,
    ) -> Workflow:
        """Create a workflow, store it (status ACTIVE, first step next) and return it.

        With ``start=True`` (or ``automate_start: true`` in the definition) the call goes on
        and runs the first step and the ``automate_next`` chain after it, like a
        ``next_step()`` call (``actor`` is recorded for it), before returning. The run's lease
        is then stored with the row, so starting costs one write fewer than
        ``create_workflow`` followed by ``next_step``. A step that fails is raised as from
        ``next_step`` (the workflow is stored, FAILED).

        ``parent_execution_id`` makes it a child of that workflow (normally set by the engine
        for SUB_WORKFLOW steps); a child is not started here even with ``automate_start``:
        its parent drives it.

        Raises UnknownWorkflowTypeError for an unknown type, DefinitionError for an invalid
        file and StateValidationError (naming the type and each field) for invalid
        ``initial_data``; nothing is stored then. With an ``idempotency_key`` already in use,
        the existing workflow is returned if it was started with the same type and
        ``initial_data``, and IdempotencyConflictError is raised if not.
        """
        if workflow_builder is not None and workflow_builder is not self:
            logger.warning("create_workflow(workflow_builder=...) names another builder; ignored")
        compiled = self._compile(workflow_type)
        state = new_state(compiled.state_model, initial_data, workflow_type)
        persistence = await self._persistence(
            persistence_provider, execution_provider, workflow_observer
        )
        first = compiled.steps[0]
        definition = compiled.definition
        starts = (start or definition.automate_start) and parent_execution_id is None
        lease = self._workflow_lease() if starts else None
        record = WorkflowRecord(
            id=workflow_id or str(uuid.uuid4()),
            workflow_type=workflow_type,
            workflow_version=definition.workflow_version,
            definition_snapshot=compiled.snapshot,
            state_model_path=definition.initial_state_model,
            status=WorkflowStatus.ACTIVE.value,
            state=dump_state(state),
            current_step=first.name,
            current_step_index=0,
            metadata=dict(metadata or {}),
            saga_mode=definition.saga_enabled,
            parent_execution_id=parent_execution_id,
            owner_id=owner_id,
            org_id=org_id,
            data_region=data_region,
            priority=5 if priority is None else priority,
            idempotency_key=idempotency_key,
            idempotency_hash=(
                _payload_digest(workflow_type, initial_data) if idempotency_key else None
            ),
            lease_owner=None if lease is None else lease.owner,
            lease_expires_at=None if lease is None else lease.starting(),
        )
        started = AuditEvent(
            "WORKFLOW_STARTED",
            new_status=WorkflowStatus.ACTIVE.value,
            user_id=owner_id,
            data={"workflow_type": workflow_type, "workflow_version": definition.workflow_version},
        )
        stored = await persistence.create_workflow(record, [started])
        if stored.id != record.id:
            # The idempotency key belongs to an existing workflow: that one is the answer, if
            # it was asked for with the same payload (rows from before the hash: trusted).
            if stored.idempotency_hash not in (None, record.idempotency_hash):
                raise IdempotencyConflictError(
                    str(idempotency_key), stored.id, stored.workflow_type
                )
            compiled = self._compile_snapshot(stored)
            lease = None  # not this call's row: it is not driven here
        elif lease is not None and stored.lease_expires_at is not None:
            lease.granted(stored.lease_expires_at)
        workflow = self._workflow(
            compiled,
            stored,
            persistence,
            execution_provider,
            workflow_observer,
            expression_evaluator_cls,
            template_engine_cls,
            state=state if stored.id == record.id else None,
            lease=lease,
        )
        if stored.id == record.id:
            hub = ObserverHub(
                workflow_observer if workflow_observer is not None else self.workflow_observer
            )
            await hub.emit(
                "on_workflow_started",
                workflow_id=workflow.id,
                workflow_type=workflow_type,
                initial_state=workflow.state,
            )
            if starts:
                await workflow.next_step(actor=actor)
        return workflow

    async def start_workflow(
        self,
        workflow_type: str,
        initial_data: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Workflow:
        """Create a workflow and run its first call (the first step and the ``automate_next``
        chain after it) in one go: ``create_workflow(..., start=True)``; takes the same
        keyword arguments. Returns the workflow where the call left it (waiting, completed,
        or ACTIVE at a step without ``automate_next``)."""
        return await self.create_workflow(workflow_type, initial_data, start=True, **options)

    def _workflow_lease(self) -> RunLease:
        """A new driver's lease, as a workflow object of this builder makes its own."""
        return RunLease.for_services(self._services())

    async def load_workflow(
        self,
        workflow_id: str,
        *,
        persistence_provider: PersistenceProvider | None = None,
        execution_provider: ExecutionProvider | None = None,
        workflow_observer: object | None = None,
        validate_state: bool = True,
    ) -> Workflow:
        """Load a stored workflow. It runs from its own definition snapshot, whatever the
        current YAML says. Raises WorkflowNotFoundError, and StoredStateError if the stored
        state no longer validates against its model; with ``validate_state=False`` such a
        workflow loads with the raw stored dict as ``state``, to inspect and cancel."""
        persistence = await self._persistence(
            persistence_provider, execution_provider, workflow_observer
        )
        record = await persistence.load_workflow(workflow_id)
        if record is None:
            raise WorkflowNotFoundError(workflow_id)
        compiled = self._compile_snapshot(record)
        return self._workflow(
            compiled,
            record,
            persistence,
            execution_provider,
            workflow_observer,
            validate_state=validate_state,
        )

    async def close(self) -> None:
        """Close the builder's default providers that it initialized (persistence, execution,
        observer) and stop the heartbeat task. Providers passed to single calls belong to the
        caller."""
        if self.step_monitor is not None:
            await self.step_monitor.close()
        for resource in (
            self.persistence_provider,
            self.execution_provider,
            self.workflow_observer,
        ):
            if resource is None or id(resource) not in self._initialized:
                continue
            self._initialized.discard(id(resource))
            close = getattr(resource, "close", None)
            if callable(close):
                outcome = close()
                if inspect.isawaitable(outcome):
                    await outcome

    async def __aenter__(self) -> WorkflowBuilder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
