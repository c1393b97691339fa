"""``DefinitionSource``: where a builder's workflow definitions come from. It reads the registry
and the workflow files, resolves a type's configuration (registry entry + file, ``${ENV}`` and
``{{parameters.x}}`` substituted), compiles it once, and compiles stored snapshots once per
content; per-source step overrides are applied to everything it compiles."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from ruvon.definition.compiled import (
    CallSpec,
    CompiledWorkflow,
    ParsedWorkflow,
    compile_workflow,
    parse_workflow,
)
from ruvon.definition.loader import (
    Borrowed,
    LineMap,
    SourceDocument,
    clear_import_cache,
    read_yaml,
    read_yaml_file,
    substitute,
)
from ruvon.definition.schema import RegistryFile, WorkflowDefinition
from ruvon.errors import DefinitionError, DefinitionIssue, UnknownWorkflowTypeError
from ruvon.providers.expression_evaluator import ExpressionEvaluator

__all__ = ["DefinitionSource"]

T = TypeVar("T")

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


def _issue_error(message: str, file: str | None = None) -> DefinitionError:
    return DefinitionError([DefinitionIssue(message, file=file)], source=file)


class DefinitionSource:
    """A builder's registry, config directory and compiled definitions.

    ``workflow_registry`` is a registry file, a dict ``{type: entry}`` or ``None`` (then
    ``<config_dir>/workflow_registry.yaml`` or ``./config/workflow_registry.yaml`` if one
    exists; otherwise types are found by scanning ``config_dir``). ``expression_evaluator``
    checks the conditions of everything compiled.
    """

    def __init__(
        self,
        workflow_registry: Mapping[str, Any] | str | os.PathLike[str] | None,
        config_dir: str | os.PathLike[str] | None,
        expression_evaluator: ExpressionEvaluator,
    ) -> None:
        self.expression_evaluator = expression_evaluator
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

    # -- compiling -------------------------------------------------------------------------

    def compile(self, workflow_type: str) -> CompiledWorkflow:
        """The compiled definition of a type's current file, compiled once (and logging its
        warnings then). Raises UnknownWorkflowTypeError or DefinitionError."""
        compiled = self._compiled.get(workflow_type)
        if compiled is None:
            compiled = self._resolved(workflow_type, compile_workflow)
            for warning in compiled.warnings:
                definition_logger.warning("%s", warning)
            compiled = self._overridden(compiled)
            self._compiled[workflow_type] = compiled
            self._snapshots[self._snapshot_key(compiled.snapshot)] = compiled
        return compiled

    def parse(self, workflow_type: str) -> ParsedWorkflow:
        """The type's current file checked without importing anything it names (its functions,
        models and the state fields its conditions read are not checked), for tools that check
        or draw a file where its code is not installed. Not cached, nothing logged. Raises
        UnknownWorkflowTypeError or DefinitionError."""
        return self._resolved(workflow_type, parse_workflow)

    def _resolved(
        self,
        workflow_type: str,
        check: Callable[[Mapping[str, Any], LineMap, ExpressionEvaluator], T],
    ) -> T:
        """``check`` applied to the type's resolved configuration; the problems of resolving it
        are raised together with those ``check`` finds."""
        raw, lines, issues = self._source(workflow_type)
        try:
            checked = check(raw, lines, self.expression_evaluator)
        except DefinitionError as exc:
            # A value left unsubstituted also fails where it is used: report it once.
            spots = {(issue.file, issue.line, issue.key) for issue in issues}
            rest = [i for i in exc.issues if (i.file, i.line, i.key) not in spots]
            raise DefinitionError([*issues, *rest], source=lines.file) from None
        if issues:
            raise DefinitionError(issues, source=lines.file)
        return checked

    def type_of_file(self, path: str | os.PathLike[str]) -> str | None:
        """The registered type whose ``config_file`` is the file at ``path``, if any."""
        wanted = Path(path).resolve()
        for workflow_type, entry in self.registry.items():
            config_file = entry.get("config_file")
            if config_file and self._resolve_file(str(config_file)).resolve() == wanted:
                return workflow_type
        return None

    def compile_snapshot(self, snapshot: Mapping[str, Any], workflow_id: str) -> CompiledWorkflow:
        """The compiled form of a stored definition snapshot (of workflow ``workflow_id``, for
        the messages), compiled once per content."""
        key = self._snapshot_key(snapshot)
        compiled = self._snapshots.get(key)
        if compiled is None:
            lines = LineMap(f"<definition snapshot of workflow {workflow_id}>")
            compiled = compile_workflow(snapshot, lines, self.expression_evaluator)
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
        ``workflow_type`` only, if given) in everything compiled from now on."""
        target = "override" if workflow_type is None else f"override of {workflow_type}"
        self._step_overrides[(workflow_type, step_name)] = CallSpec.of(
            func, f"{target}.{step_name}"
        )
        # Compiled definitions are per source: recompile with the override.
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

    # -- the types -------------------------------------------------------------------------

    def list_workflow_types(self) -> list[str]:
        """The registered workflow types."""
        return sorted(self.registry)

    def validate(self, workflow_type: str | None = None) -> list[DefinitionIssue]:
        """Compile one type (or every registered type); raise a DefinitionError listing the
        problems of every file. Returns the warnings of the types checked."""
        if workflow_type is not None:
            return list(self.compile(workflow_type).warnings)
        issues: list[DefinitionIssue] = []
        warnings: list[DefinitionIssue] = []
        for name in self.list_workflow_types():
            try:
                warnings.extend(self.compile(name).warnings)
            except DefinitionError as exc:
                issues.extend(exc.issues)
        if issues:
            raise DefinitionError(issues)
        return warnings

    def reload(self, workflow_type: str, yaml_content: str | None = None) -> None:
        """Forget the compiled definition of a type (and imported functions); optionally
        replace the file's content with ``yaml_content``. Compiled snapshots are kept."""
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
