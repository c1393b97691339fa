"""Conditions checked against the state model: a condition reading ``state.ammount`` where the
model has ``amount`` is reported at load time, instead of reading ``None`` (and so being false)
at every run.

Conditions are parsed with Python's ``ast``, as the default evaluator parses them, so text inside
string literals is never taken for a field. Checked: route conditions (bare names too, which
read the state's fields), and the ``state.…`` paths of ``while_condition`` and ``iterate_over``.
A dict state, and any model (or nested model) that allows extra keys, accepts every name.
"""

from __future__ import annotations

import ast
import difflib
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel

from ruvon.definition.loader import LineMap, YamlPath
from ruvon.definition.schema import (
    DecisionStep,
    HumanInLoopStep,
    LoopStep,
    ParallelStep,
    StandardStep,
    StepDefinition,
)
from ruvon.errors import DefinitionIssue, ExpressionError
from ruvon.providers.expression_evaluator import ExpressionEvaluator

__all__ = ["check_state_references"]

FieldPath = tuple[str, ...]


def check_state_references(
    steps: Sequence[tuple[int, StepDefinition]],
    state_model: type[Any],
    lines: LineMap,
    evaluator: ExpressionEvaluator,
) -> list[DefinitionIssue]:
    """An issue for every field a condition of ``steps`` reads that ``state_model`` lacks."""
    issues: list[DefinitionIssue] = []
    checker = _Checker(state_model, lines, evaluator, issues)
    checker.steps(steps, ("steps",), bare_names=True)
    return issues


class _Checker:
    """Walks the steps and collects the issues of their expressions."""

    def __init__(
        self,
        state_model: type[Any],
        lines: LineMap,
        evaluator: ExpressionEvaluator,
        issues: list[DefinitionIssue],
    ) -> None:
        self.state_model = state_model
        self.lines = lines
        self.evaluator = evaluator
        self.issues = issues

    def steps(
        self, steps: Sequence[tuple[int, StepDefinition]], base: YamlPath, *, bare_names: bool
    ) -> None:
        """Check the expressions of ``steps`` (``(position, step)`` pairs under ``base``)."""
        for index, step in steps:
            path = (*base, index)
            if isinstance(step, (StandardStep, DecisionStep, HumanInLoopStep)):
                for r, route in enumerate(step.routes):
                    if route.condition is not None:
                        where = (*path, "routes", r, "condition")
                        self.expression(route.condition, where, step.name, "routes", bare_names)
            if isinstance(step, (LoopStep, ParallelStep)) and step.iterate_over:
                where = (*path, "iterate_over")
                self.expression(step.iterate_over, where, step.name, "iterate_over", False)
            if isinstance(step, LoopStep):
                if step.while_condition:
                    where = (*path, "while_condition")
                    self.expression(
                        step.while_condition, where, step.name, "while_condition", False
                    )
                # A loop body may read the loop's own names (the item), so only state.… paths.
                body = list(enumerate(step.loop_body))
                self.steps(body, (*path, "loop_body"), bare_names=False)

    def expression(self, text: str, where: YamlPath, step: str, key: str, bare_names: bool) -> None:
        """Report the unknown fields ``text`` (the value of ``key``) reads."""
        try:
            self.evaluator.validate(text)  # an invalid condition is reported on its own
            tree = ast.parse(text.strip(), mode="eval")
        except (ExpressionError, SyntaxError, ValueError, RecursionError):
            return
        label = "route condition" if key == "routes" else key
        reported: set[FieldPath] = set()
        for path, from_state in _paths(tree.body, bare_names):
            problem = _problem(self.state_model, path)
            if problem is None:
                continue
            depth, reason = problem
            shown = ".".join(path[: depth + 1])
            shown = f"state.{shown}" if from_state else shown
            if path[: depth + 1] not in reported:
                reported.add(path[: depth + 1])
                message = f"{label} refers to {shown}, {reason}"
                self.issues.append(self.lines.issue(message, where, step=step, key=key))


def _paths(node: ast.AST, bare_names: bool) -> Iterator[tuple[FieldPath, bool]]:
    """The field paths ``node`` reads: ``(("applicant", "income"), True)`` for
    ``state.applicant.income``, ``(("amount",), False)`` for a bare ``amount``."""
    if isinstance(node, (ast.Attribute, ast.Subscript, ast.Name)):
        parts: list[str | None] = []
        root: ast.AST = node
        while isinstance(root, (ast.Attribute, ast.Subscript)):
            if isinstance(root, ast.Attribute):
                parts.append(root.attr)
            else:
                key = root.slice
                value = key.value if isinstance(key, ast.Constant) else None
                parts.append(value if isinstance(value, str) else None)  # state['amount']
                yield from _paths(key, bare_names)
            root = root.value
        parts.reverse()
        if isinstance(root, ast.Name) and (root.id == "state" or bare_names):
            from_state = root.id == "state"
            known: list[str] = [] if from_state else [root.id]
            for part in parts:
                if part is None:
                    break
                known.append(part)
            if known:
                yield tuple(known), from_state
        elif not isinstance(root, ast.Name):
            yield from _paths(root, bare_names)
        return
    if isinstance(node, ast.Call):
        # The called name is a built-in function, not a field; its arguments are read.
        for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
            yield from _paths(argument, bare_names)
        return
    for child in ast.iter_child_nodes(node):
        yield from _paths(child, bare_names)


def _problem(model: type[Any], path: FieldPath) -> tuple[int, str] | None:
    """``(depth, reason)`` if ``path[depth]`` is not readable on its model, else None."""
    current: type[Any] | None = model
    for depth, name in enumerate(path):
        if current is None or not _is_model(current) or name.startswith("_"):
            return None
        fields = current.model_fields
        if name in fields:
            current = _nested_model(fields[name].annotation)
            continue
        alias_of = _aliases(current).get(name)
        if alias_of is not None:
            return depth, (
                f"the alias of {current.__name__}.{alias_of}; conditions read fields by name: "
                f"use '{alias_of}'"
            )
        if hasattr(current, name):
            return None  # a property, computed field or method: readable, not checked further
        if current.model_config.get("extra") == "allow":
            return None
        names = [*fields, *current.model_computed_fields]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return depth, f"which {current.__name__} does not have{hint}"
    return None


def _is_model(cls: type[Any]) -> bool:
    return isinstance(cls, type) and issubclass(cls, BaseModel)


def _aliases(model: type[BaseModel]) -> dict[str, str]:
    """Every alias of ``model``'s fields -> the field's name."""
    found: dict[str, str] = {}
    for name, info in model.model_fields.items():
        choices: list[Any] = [info.alias, info.validation_alias]
        if isinstance(info.validation_alias, AliasChoices):
            choices.extend(info.validation_alias.choices)
        for alias in choices:
            if isinstance(alias, str) and alias != name:
                found.setdefault(alias, name)
    return found


def _nested_model(annotation: Any) -> type[Any] | None:
    """The pydantic model a field holds (``Applicant``, ``Applicant | None``), else None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_model(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _nested_model(options[0]) if len(options) == 1 else None
    return annotation if _is_model(annotation) else None
