"""``WorkflowBuilder``: reads the registry and workflow files, compiles definitions once, and
creates and loads workflows with the providers it is given (the SDK's composition root)."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ruvon.definition.compiled import CallSpec, CompiledWorkflow, compile_workflow
from ruvon.definition.loader import _IMPORT_CACHE as IMPORT_CACHE
from ruvon.definition.loader import (
    Borrowed,
    LineMap,
    SourceDocument,
    clear_import_cache,
    read_yaml,
    read_yaml_file,
    substitute,
)
from ruvon.definition.loader import import_callable as _import_callable
from ruvon.definition.schema import RegistryFile, WorkflowDefinition
from ruvon.errors import (
    DefinitionError,
    DefinitionIssue,
    IdempotencyConflictError,
    UnknownWorkflowTypeError,
    WorkflowNotFoundError,
)
from ruvon.implementations.execution.sync import SyncExecutionProvider
from ruvon.implementations.expression_evaluator.simple import SimpleExpressionEvaluator
from ruvon.implementations.templating.jinja2 import Jinja2TemplateEngine
from ruvon.models import WorkflowStatus
from ruvon.observing import ObserverHub
from ruvon.providers.execution import ExecutionProvider
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.persistence import AuditEvent, PersistenceProvider, WorkflowRecord
from ruvon.providers.template_engine import TemplateEngine
from ruvon.serialization import jsonable
from ruvon.settings import persistence_from_url
from ruvon.state import dump_state, new_state
from ruvon.workflow import Workflow

__all__ = ["WorkflowBuilder"]

logger = logging.getLogger("ruvon.builder")
definition_logger = logging.getLogger("ruvon.definition")
"""Where the warnings of a compiled definition are logged, once per compilation."""

_REGISTRY_ONLY_KEYS = frozenset(
    {"type", "config_file", "requires", "deprecated", "deprecation_date", "remove_after_date"}
)
_REGISTRY_NAME = "workflow_registry.yaml"
_WORKFLOW_KEYS = frozenset(
    name
    for field_name, info in WorkflowDefinition.model_fields.items()
    for name in (
        field_name,
        *(
            choice
            for choice in getattr(info.validation_alias, "choices", ())
            if isinstance(choice, str)
        ),
    )
)
"""The top-level keys of a workflow file (aliases included)."""


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


def _issue_error(message: str, file: str | None = None) -> DefinitionError:
    return DefinitionError([DefinitionIssue(message, file=file)], source=file)


class WorkflowBuilder:
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

    _import_cache: dict[str, Any] = IMPORT_CACHE
    """Imported step functions and models, shared by all builders (see clear_import_cache)."""

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
    ) -> None:
        self.expression_evaluator_cls = expression_evaluator_cls
        self.template_engine_cls = template_engine_cls
        self.expression_evaluator: ExpressionEvaluator = expression_evaluator_cls()
        self.template_engine: TemplateEngine = template_engine_cls()
        self.persistence_provider = persistence_provider
        self.execution_provider: ExecutionProvider = execution_provider or SyncExecutionProvider()
        self.workflow_observer = workflow_observer if workflow_observer is not None else observer
        self._initialized: set[int] = set()
        self._compiled: dict[str, CompiledWorkflow] = {}
        self._snapshots: dict[str, CompiledWorkflow] = {}
        self._registry_lines: LineMap | None = None
        self._registry_positions: dict[str, int] = {}
        self._step_overrides: dict[tuple[str | None, str], CallSpec] = {}
        self._registry_candidates: list[Path] = []
        """The registry files looked for (none existed) when no registry was given."""

        registry_path: Path | None = None
        if isinstance(workflow_registry, (str, os.PathLike)):
            registry_path = Path(workflow_registry)
        if config_dir is not None:
            self.config_dir = Path(config_dir)
        elif registry_path is not None:
            self.config_dir = registry_path.parent
        elif Path("config").is_dir():
            self.config_dir = Path("config")
        else:
            self.config_dir = Path.cwd()
        if workflow_registry is None:
            for candidate in (self.config_dir / _REGISTRY_NAME, Path("config") / _REGISTRY_NAME):
                if candidate.is_file():
                    registry_path = candidate
                    break
                if candidate.absolute() not in self._registry_candidates:
                    self._registry_candidates.append(candidate.absolute())
        self.registry_path = registry_path
        self.registry: dict[str, dict[str, Any]] = (
            self._read_registry(registry_path)
            if registry_path is not None
            else {k: {"type": k, **dict(v)} for k, v in (workflow_registry or {}).items()}  # type: ignore[union-attr]
        )

    # -- the registry and workflow files ---------------------------------------------------

    def _read_registry(self, path: Path) -> dict[str, dict[str, Any]]:
        document = read_yaml_file(path)
        self._registry_lines = document.lines
        data = document.data if document.data is not None else {}
        try:
            registry = RegistryFile.model_validate(data)
        except ValidationError as exc:
            issues = []
            for err in exc.errors():
                loc = tuple(err["loc"])
                key = next((str(p) for p in reversed(loc) if isinstance(p, str)), None)
                message = (
                    f"unknown key '{key}'"
                    if err["type"] == "extra_forbidden"
                    else f"missing required key '{key}'"
                    if err["type"] == "missing"
                    else err["msg"]
                )
                issues.append(document.lines.issue(message, loc, key=key))
            raise DefinitionError(issues, source=str(path)) from None
        entries: dict[str, dict[str, Any]] = {}
        issues = []
        raw_entries = data.get("workflows", []) if isinstance(data, dict) else []
        for position, (entry, raw) in enumerate(zip(registry.workflows, raw_entries, strict=False)):
            if entry.type in entries:
                issues.append(
                    document.lines.issue(
                        f"workflow type '{entry.type}' is registered twice",
                        ("workflows", position, "type"),
                        key="type",
                    )
                )
            entries[entry.type] = dict(raw)
            self._registry_positions.setdefault(entry.type, position)
        if issues:
            raise DefinitionError(issues, source=str(path))
        return entries

    def _resolve_file(self, config_file: str) -> Path:
        path = Path(config_file)
        if path.is_absolute():
            return path
        for base in (self.config_dir, Path.cwd()):
            if (base / path).is_file():
                return base / path
        return self.config_dir / path

    def _scan_for_type(self, workflow_type: str) -> Path | None:
        """Find a YAML file in config_dir whose ``workflow_type`` is ``workflow_type``."""
        if not self.config_dir.is_dir():
            return None
        for path in sorted([*self.config_dir.glob("*.yaml"), *self.config_dir.glob("*.yml")]):
            if path.name == _REGISTRY_NAME:
                continue
            try:
                document = read_yaml_file(path)
            except DefinitionError:
                continue
            if (
                isinstance(document.data, dict)
                and document.data.get("workflow_type") == workflow_type
            ):
                return path
        return None

    def _unknown_type(self, workflow_type: str) -> UnknownWorkflowTypeError:
        """The error for a type found nowhere; without a registry it says where the builder
        looked (with one, the registry is where the type belongs)."""
        error = UnknownWorkflowTypeError(workflow_type)
        if self.registry_path is None and self._registry_candidates:
            tried = " and ".join(str(path) for path in self._registry_candidates)
            directory = self.config_dir.absolute()
            scanned = (
                f"no *.yaml or *.yml file in {directory} has 'workflow_type: {workflow_type}'"
                if directory.is_dir()
                else f"the config directory {directory} does not exist"
            )
            error.args = (f"{error} No registry file exists (looked for {tried}), and {scanned}.",)
        return error

    def _source(self, workflow_type: str) -> tuple[dict[str, Any], LineMap, list[DefinitionIssue]]:
        """The resolved configuration of a type (registry entry + file, substituted), and the
        problems found on the way (reported together with the file's other problems)."""
        entry = self.registry.get(workflow_type)
        document: SourceDocument
        position = self._registry_positions.get(workflow_type)
        # Where the type's entry is in the registry file (unknown for dict registries).
        entry_path: tuple[str | int, ...] = ("workflows", position) if position is not None else ()
        registry_lines = self._registry_lines or LineMap(
            str(self.registry_path) if self.registry_path else None
        )
        if entry is None:
            found = self._scan_for_type(workflow_type)
            if found is None:
                raise self._unknown_type(workflow_type)
            entry = {"type": workflow_type}
            document = read_yaml_file(found)
        elif entry.get("config_file"):
            config_file = self._resolve_file(str(entry["config_file"]))
            if not config_file.is_file():
                issue = registry_lines.issue(
                    f"config_file '{entry['config_file']}' not found (looked in {self.config_dir})",
                    (*entry_path, "config_file"),
                    key="config_file",
                )
                raise DefinitionError([issue], source=registry_lines.file)
            document = read_yaml_file(config_file)
        else:
            # An inline entry is the workflow file: locate its keys inside the registry.
            prefix = len(entry_path)
            inline = LineMap(
                registry_lines.file,
                {
                    path[prefix:]: line
                    for path, line in registry_lines.lines.items()
                    if entry_path and path[:prefix] == entry_path
                },
            )
            document = SourceDocument(
                {k: v for k, v in entry.items() if k not in _REGISTRY_ONLY_KEYS}, inline
            )
        lines = document.lines
        if not isinstance(document.data, dict):
            raise _issue_error("a workflow file must be a mapping with 'steps'", lines.file)
        base = {
            k: v
            for k, v in entry.items()
            if k not in _REGISTRY_ONLY_KEYS and k not in ("description",)
        }
        issues: list[DefinitionIssue] = []
        if entry.get("config_file"):
            # Keys of the registry entry that are not workflow keys: report them where they are.
            for key in [k for k in base if k not in _WORKFLOW_KEYS]:
                issues.append(
                    registry_lines.issue(f"unknown key '{key}'", (*entry_path, key), key=key)
                )
                del base[key]
        raw: dict[str, Any] = {**base, **document.data}
        if "initial_state_model_path" in raw and "initial_state_model" in raw:
            if "initial_state_model_path" in document.data:
                raw.pop("initial_state_model")
            else:
                raw.pop("initial_state_model_path")
        if entry.get("config_file"):
            # Keys that came from the registry entry are reported there, not in the file.
            note = f"in the registry entry of type '{workflow_type}'"
            for key in raw:
                if key in base and key not in document.data:
                    lines.borrowed[key] = Borrowed(registry_lines, entry_path, note)
        declared = raw.setdefault("workflow_type", workflow_type)
        if declared != workflow_type:
            issues.append(
                lines.issue(
                    f"workflow_type '{declared}' does not match the registry type "
                    f"'{workflow_type}'",
                    ("workflow_type",),
                    key="workflow_type",
                )
            )
        if not raw.get("initial_state_model") and not raw.get("initial_state_model_path"):
            issues.append(
                lines.issue(
                    "missing 'initial_state_model' (in the registry entry or the workflow file)",
                    (),
                    key="initial_state_model",
                )
            )
        params = raw.get("parameters") or {}
        params = (
            substitute(params, {}, lines, issues, ("parameters",))
            if isinstance(params, dict)
            else {}
        )
        rest = substitute(
            {k: v for k, v in raw.items() if k != "parameters"}, params, lines, issues
        )
        resolved = {**rest, "parameters": params} if "parameters" in raw else rest
        return resolved, lines, issues

    def _compile(self, workflow_type: str) -> CompiledWorkflow:
        compiled = self._compiled.get(workflow_type)
        if compiled is None:
            raw, lines, issues = self._source(workflow_type)
            try:
                compiled = compile_workflow(raw, lines, self.expression_evaluator)
            except DefinitionError as exc:
                # A value left unsubstituted also fails where it is used: report it once.
                spots = {(issue.file, issue.line, issue.key) for issue in issues}
                rest = [i for i in exc.issues if (i.file, i.line, i.key) not in spots]
                raise DefinitionError([*issues, *rest], source=lines.file) from None
            if issues:
                raise DefinitionError(issues, source=lines.file)
            for warning in compiled.warnings:
                definition_logger.warning("%s", warning)
            compiled = self._overridden(compiled)
            self._compiled[workflow_type] = compiled
            self._snapshots[self._snapshot_key(compiled.snapshot)] = compiled
        return compiled

    def _compile_snapshot(self, record: WorkflowRecord) -> CompiledWorkflow:
        key = self._snapshot_key(record.definition_snapshot)
        compiled = self._snapshots.get(key)
        if compiled is None:
            lines = LineMap(f"<definition snapshot of workflow {record.id}>")
            compiled = compile_workflow(
                record.definition_snapshot, lines, self.expression_evaluator
            )
            compiled = self._overridden(compiled)
            self._snapshots[key] = compiled
        return compiled

    def override_step(
        self,
        step_name: str,
        func: Callable[..., Any],
        *,
        workflow_type: str | None = None,
    ) -> None:
        """Run ``func`` instead of the function of every step called ``step_name`` (of
        ``workflow_type`` only, if given) in the workflows this builder creates or loads from
        now on. For tests: other builders, and the imported module, are untouched."""
        target = "override" if workflow_type is None else f"override of {workflow_type}"
        self._step_overrides[(workflow_type, step_name)] = CallSpec.of(
            func, f"{target}.{step_name}"
        )
        # Compiled definitions are per builder: recompile with the override.
        self._compiled.clear()
        self._snapshots.clear()

    def _overridden(self, compiled: CompiledWorkflow) -> CompiledWorkflow:
        if not self._step_overrides:
            return compiled
        steps = []
        for step in compiled.steps:
            spec = self._step_overrides.get(
                (compiled.workflow_type, step.name)
            ) or self._step_overrides.get((None, step.name))
            steps.append(step if spec is None else dataclasses.replace(step, function=spec))
        return dataclasses.replace(compiled, steps=tuple(steps))

    @staticmethod
    def _snapshot_key(snapshot: Mapping[str, Any]) -> str:
        return hashlib.sha1(
            orjson.dumps(snapshot, option=orjson.OPT_SORT_KEYS), usedforsecurity=False
        ).hexdigest()

    # -- definitions -----------------------------------------------------------------------

    def list_workflow_types(self) -> list[str]:
        """The registered workflow types."""
        return sorted(self.registry)

    def get_workflow_config(self, workflow_type: str) -> dict[str, Any]:
        """The resolved configuration of a type: registry entry + file, ``${ENV}`` and
        ``{{parameters.x}}`` substituted, fully validated. Raises ValueError if unknown."""
        return dict(self._compile(workflow_type).snapshot)

    def get_state_model_class(self, workflow_type: str) -> type[Any]:
        """The state model class of a type."""
        return self._compile(workflow_type).state_model

    def get_current_version(self, workflow_type: str) -> str | None:
        """The ``workflow_version`` of the type's current file."""
        return self._compile(workflow_type).definition.workflow_version

    def validate(self, workflow_type: str | None = None) -> list[DefinitionIssue]:
        """Load and check one type (or every registered type); raise a DefinitionError that
        lists the problems of every file.

        Returns the warnings (definitions that load but look wrong, such as a branch falling
        through into another branch) of the types checked; they never fail loading.
        """
        if workflow_type is not None:
            return list(self._compile(workflow_type).warnings)
        issues: list[DefinitionIssue] = []
        warnings: list[DefinitionIssue] = []
        for name in self.list_workflow_types():
            try:
                warnings.extend(self._compile(name).warnings)
            except DefinitionError as exc:
                issues.extend(exc.issues)
        if issues:
            raise DefinitionError(issues)
        return warnings

    def reload_workflow_type(
        self, workflow_type: str, yaml_content: str | None = None
    ) -> dict[str, Any]:
        """Forget the compiled definition (and imported functions); optionally replace the file's
        content with ``yaml_content``. Running workflows keep their snapshots."""
        self._compiled.pop(workflow_type, None)
        clear_import_cache()
        if yaml_content is not None:
            # The new content is no longer the registry file's entry.
            self._registry_positions.pop(workflow_type, None)
            document = read_yaml(yaml_content, f"<reloaded {workflow_type}>")
            if not isinstance(document.data, dict):
                raise _issue_error(
                    "a workflow file must be a mapping with 'steps'", document.lines.file
                )
            entry = {
                k: v for k, v in self.registry.get(workflow_type, {}).items() if k != "config_file"
            }
            self.registry[workflow_type] = {**entry, **document.data, "type": workflow_type}
        return self.get_workflow_config(workflow_type)

    @classmethod
    def _import_from_string(cls, path: str) -> Any:
        """Import ``pkg.module.attr`` (or ``pkg.module:attr``), cached for all builders."""
        try:
            return _import_callable(path)
        except ImportError as exc:
            raise ValueError(str(exc)) from exc

    @classmethod
    def clear_import_cache(cls) -> None:
        """Forget every imported step function and model."""
        clear_import_cache()

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
        )

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
    ) -> Workflow:
        """Create a workflow, store it (status ACTIVE, first step next) and return it.

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
            owner_id=owner_id,
            org_id=org_id,
            data_region=data_region,
            priority=5 if priority is None else priority,
            idempotency_key=idempotency_key,
            idempotency_hash=(
                _payload_digest(workflow_type, initial_data) if idempotency_key else None
            ),
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
        workflow = self._workflow(
            compiled,
            stored,
            persistence,
            execution_provider,
            workflow_observer,
            expression_evaluator_cls,
            template_engine_cls,
            state=state if stored.id == record.id else None,
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
            if definition.automate_start:
                await workflow.next_step()
        return workflow

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

    async def list_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        parent_workflow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        persistence_provider: PersistenceProvider | None = None,
    ) -> list[WorkflowRecord]:
        """The stored workflows matching every given filter, newest first, as records (nothing
        is compiled or loaded: load one with :meth:`load_workflow` to drive it).

        ``status`` is one status or several; ``created_after`` (inclusive) and
        ``created_before`` (exclusive) must be timezone-aware. Raises ``ValueError`` for an
        unknown status, a naive datetime or a negative ``limit``/``offset``.
        """
        persistence = await self._persistence(persistence_provider)
        return await persistence.list_workflows(
            status=status,
            workflow_type=workflow_type,
            owner_id=owner_id,
            org_id=org_id,
            parent_workflow_id=parent_workflow_id,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )

    async def count_workflows(
        self,
        *,
        status: str | Sequence[str] | None = None,
        workflow_type: str | None = None,
        owner_id: str | None = None,
        org_id: str | None = None,
        parent_workflow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        persistence_provider: PersistenceProvider | None = None,
    ) -> int:
        """How many stored workflows match the filters of :meth:`list_workflows` (its total
        without ``limit`` and ``offset``)."""
        persistence = await self._persistence(persistence_provider)
        return await persistence.count_workflows(
            status=status,
            workflow_type=workflow_type,
            owner_id=owner_id,
            org_id=org_id,
            parent_workflow_id=parent_workflow_id,
            created_after=created_after,
            created_before=created_before,
        )

    async def close(self) -> None:
        """Close the builder's default providers that it initialized (persistence, execution,
        observer). Providers passed to single calls belong to the caller."""
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
