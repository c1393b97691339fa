"""A definition made runnable: schema-validated, cross-checked, with its step functions, input
models and state model imported. Built once per definition and shared by all its workflows."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ruvon.definition.branches import fall_through_warnings
from ruvon.definition.loader import LineMap, YamlPath, import_callable
from ruvon.definition.schema import (
    StepDefinition,
    WorkflowDefinition,
)
from ruvon.definition.state_refs import check_state_references
from ruvon.definition.validate import check_definition
from ruvon.errors import DefinitionError, DefinitionIssue
from ruvon.models import StepKind, WorkflowStep
from ruvon.providers.expression_evaluator import ExpressionEvaluator

__all__ = [
    "CallSpec",
    "CompiledStep",
    "CompiledWorkflow",
    "ParsedWorkflow",
    "compile_workflow",
    "parse_workflow",
]

_STEP_ADAPTER: TypeAdapter[StepDefinition] = TypeAdapter(StepDefinition)


@dataclass(frozen=True, slots=True)
class CallSpec:
    """How to call a step function: which keyword arguments it can take."""

    func: Callable[..., Any]
    accepts_any_keyword: bool
    keyword_names: frozenset[str]
    """Parameters after ``(state, context)`` that can be passed by keyword."""

    @classmethod
    def of(cls, func: Callable[..., Any], path: str) -> CallSpec:
        """Inspect ``func``; raise ValueError if it cannot take ``(state, context)``."""
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            return cls(func, True, frozenset())
        params = list(signature.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        var_positional = any(p.kind is p.VAR_POSITIONAL for p in params)
        if len(positional) < 2 and not var_positional:
            raise ValueError(
                f"'{path}' must accept (state, context, **user_input); its signature is {signature}"
            )
        keywords = frozenset(
            p.name for p in positional[2:] + [p for p in params if p.kind is p.KEYWORD_ONLY]
        )
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in params)
        return cls(func, accepts_any, keywords)

    def keyword_arguments(self, user_input: Mapping[str, Any], state: Any) -> dict[str, Any]:
        """The user input this function accepts, plus declared parameters bound from the state.

        User input wins over state fields of the same name.
        """
        if self.accepts_any_keyword:
            kwargs = dict(user_input)
        else:
            kwargs = {k: v for k, v in user_input.items() if k in self.keyword_names}
        for name in self.keyword_names:
            if name not in kwargs:
                if isinstance(state, dict):
                    if name in state:
                        kwargs[name] = state[name]
                elif hasattr(state, name):
                    kwargs[name] = getattr(state, name)
        return kwargs


@dataclass(frozen=True, slots=True)
class CompiledStep:
    """One step with everything it needs at run time resolved."""

    definition: StepDefinition
    index: int
    public: WorkflowStep
    function: CallSpec | None = None
    compensate: CallSpec | None = None
    input_model: type[BaseModel] | None = None
    children: tuple[CompiledStep, ...] = ()
    """The steps declared inside this one (a LOOP's ``loop_body``), compiled like top-level
    steps (``index`` is the position among them), in the order the kind's ``nested_steps``
    hook lists them."""
    name: str = field(init=False)
    """The step's name (read on every step: a field, not a property)."""
    kind: StepKind = field(init=False)
    """The step's kind."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.definition.name)
        object.__setattr__(self, "kind", self.definition.kind)


@dataclass(frozen=True, slots=True)
class CompiledWorkflow:
    """A workflow definition ready to run."""

    definition: WorkflowDefinition
    snapshot: dict[str, Any]
    """The resolved configuration as stored with every workflow (decision 6)."""
    state_model: type[BaseModel] | type[dict[str, Any]]
    steps: tuple[CompiledStep, ...]
    index_by_name: Mapping[str, int]
    warnings: tuple[DefinitionIssue, ...] = ()
    """Problems that do not stop the definition from loading (a branch falling through into
    another branch); the builder logs them once when it compiles the type."""

    @property
    def workflow_type(self) -> str:
        """The workflow's type."""
        return self.definition.workflow_type

    def step_index(self, name: str) -> int | None:
        """The position of the step called ``name``, or None."""
        return self.index_by_name.get(name)


def _pydantic_issues(
    error: ValidationError, base: YamlPath, raw: Any, lines: LineMap
) -> list[DefinitionIssue]:
    issues = []
    for detail in error.errors():
        path: list[str | int] = list(base)
        node = raw
        step_name: str | None = None
        for part in detail["loc"]:
            is_tag = isinstance(part, str) and part.isupper() and part in StepKind.__members__
            if is_tag and isinstance(node, dict) and part not in node:
                continue  # the discriminator's tag, not a key of the file
            path.append(part)
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                node = None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                step_name = node["name"]
        key = next((p for p in reversed(path) if isinstance(p, str)), None)
        kind = detail["type"]
        if kind == "extra_forbidden":
            message = f"unknown key '{key}'"
        elif kind == "missing":
            message = f"missing required key '{key}'"
        elif kind == "unknown_step_type":
            step_type = node.get("type") if isinstance(node, dict) else None
            message = f"Unknown step type: '{step_type}'"
            key = "type"
            path.append("type")
        else:
            message = detail["msg"]
        issues.append(lines.issue(message, tuple(path), step=step_name, key=key))
    return issues


def _import(
    path: str,
    where: YamlPath,
    lines: LineMap,
    issues: list[DefinitionIssue],
    step: str | None,
    key: str,
) -> Any:
    try:
        return import_callable(path)
    except ImportError as exc:
        issues.append(lines.issue(str(exc), where, step=step, key=key))
        return None


def _call_spec(
    path: str | None,
    where: YamlPath,
    lines: LineMap,
    issues: list[DefinitionIssue],
    step: str,
    key: str,
) -> CallSpec | None:
    if path is None:
        return None
    func = _import(path, where, lines, issues, step, key)
    if func is None:
        return None
    if not callable(func):
        issues.append(lines.issue(f"'{path}' is not callable", where, step=step, key=key))
        return None
    try:
        return CallSpec.of(func, path)
    except ValueError as exc:
        issues.append(lines.issue(str(exc), where, step=step, key=key))
        return None


def _model_class(
    path: str, where: YamlPath, lines: LineMap, issues: list[DefinitionIssue], step: str | None
) -> type[Any] | None:
    key = where[-1] if where and isinstance(where[-1], str) else "model"
    cls = _import(path, where, lines, issues, step, str(key))
    if cls is None:
        return None
    if cls is dict or (isinstance(cls, type) and issubclass(cls, BaseModel)):
        return cls
    issues.append(
        lines.issue(f"'{path}' is not a pydantic model class", where, step=step, key=str(key))
    )
    return None


def _resolve_step(
    step: StepDefinition,
    index: int,
    base: YamlPath,
    lines: LineMap,
    issues: list[DefinitionIssue],
) -> CompiledStep:
    path = (*base, index)
    function_path = getattr(step, "function", None)
    function = _call_spec(function_path, (*path, "function"), lines, issues, step.name, "function")
    compensate = _call_spec(
        step.compensate_function,
        (*path, "compensate_function"),
        lines,
        issues,
        step.name,
        "compensate_function",
    )
    input_model = None
    if step.input_model is not None:
        model = _model_class(step.input_model, (*path, "input_model"), lines, issues, step.name)
        if model is dict:
            issues.append(
                lines.issue("input_model must be a pydantic model", (*path, "input_model"))
            )
        elif model is not None:
            input_model = model
    # What each kind needs beyond function/compensate_function comes from its own hooks.
    for where, dotted in step.step_functions():
        _call_spec(dotted, (*path, *where), lines, issues, step.name, str(where[-1]))
    for where, dotted in step.callables():
        _import(dotted, (*path, *where), lines, issues, step.name, str(where[-1]))
    children = tuple(
        _resolve_step(body, b, (*path, *where), lines, issues)
        for where, nested in step.nested_steps()
        for b, body in enumerate(nested)
    )
    public = WorkflowStep(
        name=step.name,
        type=step.kind,
        index=index,
        automate_next=step.automate_next,
        description=step.description,
    )
    return CompiledStep(step, index, public, function, compensate, input_model, children)


def _duplicates_with_invalid_steps(
    raw_steps: list[Any], valid: set[int], lines: LineMap
) -> list[DefinitionIssue]:
    """Duplicate step names where one of the two steps failed schema validation (duplicates
    among valid steps are found by :func:`check_definition`)."""
    issues = []
    first: dict[str, int] = {}
    for position, raw_step in enumerate(raw_steps):
        name = raw_step.get("name") if isinstance(raw_step, dict) else None
        if not isinstance(name, str):
            continue
        if name in first and not (position in valid and first[name] in valid):
            issues.append(
                lines.issue(
                    f"duplicate step name (first defined as step {first[name] + 1})",
                    ("steps", position, "name"),
                    step=name,
                    key="name",
                )
            )
        first.setdefault(name, position)
    return issues


@dataclass(frozen=True, slots=True)
class ParsedWorkflow:
    """A definition checked without importing anything it names: the schema and the checks
    across steps passed, but its functions, models and the conditions' state fields are not
    looked at (:func:`compile_workflow` does that)."""

    definition: WorkflowDefinition
    snapshot: dict[str, Any]
    """The resolved configuration (as :attr:`CompiledWorkflow.snapshot`)."""
    warnings: tuple[DefinitionIssue, ...] = ()
    """As :attr:`CompiledWorkflow.warnings`."""


def _checked(
    raw: Mapping[str, Any], lines: LineMap, evaluator: ExpressionEvaluator
) -> tuple[WorkflowDefinition | None, list[tuple[int, StepDefinition]], list[DefinitionIssue]]:
    """The schema and cross-step checks: the definition (None if the schema failed), the steps
    that are valid on their own with their positions, and every problem found."""
    issues: list[DefinitionIssue] = []
    definition: WorkflowDefinition | None = None
    try:
        definition = WorkflowDefinition.model_validate(raw)
    except ValidationError as exc:
        issues.extend(_pydantic_issues(exc, (), raw, lines))

    raw_steps = raw.get("steps")
    raw_steps = raw_steps if isinstance(raw_steps, list) else []
    if definition is not None:
        valid: list[tuple[int, StepDefinition]] = list(enumerate(definition.steps))
    else:
        # Check the steps that are valid on their own, so one run reports every problem.
        valid = []
        for position, raw_step in enumerate(raw_steps):
            try:
                valid.append((position, _STEP_ADAPTER.validate_python(raw_step)))
            except ValidationError:
                continue
    known = [s["name"] for s in raw_steps if isinstance(s, dict) and isinstance(s.get("name"), str)]
    issues.extend(check_definition(valid, lines, evaluator, known))
    issues.extend(_duplicates_with_invalid_steps(raw_steps, {i for i, _ in valid}, lines))
    return definition, valid, issues


def parse_workflow(
    raw: Mapping[str, Any], lines: LineMap, evaluator: ExpressionEvaluator
) -> ParsedWorkflow:
    """Validate ``raw`` (a resolved workflow file) without importing anything: for tools that
    check or draw a file where its code is not installed.

    Raises :class:`DefinitionError` listing every problem found.
    """
    definition, _, issues = _checked(raw, lines, evaluator)
    if issues or definition is None:
        raise DefinitionError(issues, source=lines.file)
    warnings = tuple(fall_through_warnings(definition.steps, lines))
    return ParsedWorkflow(definition, dict(raw), warnings)


def compile_workflow(
    raw: Mapping[str, Any], lines: LineMap, evaluator: ExpressionEvaluator
) -> CompiledWorkflow:
    """Validate ``raw`` (a resolved workflow file) completely and import what it names.

    Raises :class:`DefinitionError` listing every problem found.
    """
    definition, valid, issues = _checked(raw, lines, evaluator)
    compiled_steps = [_resolve_step(step, i, ("steps",), lines, issues) for i, step in valid]
    state_model: type[Any] | None = None
    model_path = raw.get("initial_state_model") or raw.get("initial_state_model_path")
    if isinstance(model_path, str):
        key: str = (
            "initial_state_model" if "initial_state_model" in raw else "initial_state_model_path"
        )
        state_model = _model_class(model_path, (key,), lines, issues, None)
    if state_model is not None:
        issues.extend(check_state_references(valid, state_model, lines, evaluator))

    if issues or definition is None or state_model is None:
        raise DefinitionError(issues, source=lines.file)
    return CompiledWorkflow(
        definition=definition,
        snapshot=dict(raw),
        state_model=state_model,
        steps=tuple(compiled_steps),
        index_by_name={step.name: step.index for step in compiled_steps},
        warnings=tuple(fall_through_warnings(definition.steps, lines)),
    )
