"""Checks across steps that the schema alone cannot make: unique names, route, jump and
dependency targets, dependency cycles and parsable conditions. Every problem is collected."""

from __future__ import annotations

from collections.abc import Sequence

from ruvon.definition.loader import LineMap, YamlPath
from ruvon.definition.schema import (
    DecisionStep,
    HumanInLoopStep,
    LoopStep,
    StandardStep,
    StepDefinition,
)
from ruvon.errors import DefinitionIssue, ExpressionError
from ruvon.providers.expression_evaluator import ExpressionEvaluator

__all__ = ["END", "check_definition"]

END = "END"
"""The ``next:`` value that ends the workflow after a step."""


def check_definition(
    steps: Sequence[tuple[int, StepDefinition]],
    lines: LineMap,
    evaluator: ExpressionEvaluator,
    known_names: Sequence[str] = (),
) -> list[DefinitionIssue]:
    """Every cross-step problem of ``steps`` (``(position, step)`` pairs), located via ``lines``.

    ``known_names`` are names of steps that failed schema validation: targets naming them are
    not reported again.
    """
    issues: list[DefinitionIssue] = []
    _check_steps(steps, ("steps",), lines, evaluator, issues, set(known_names))
    _check_cycles(steps, lines, issues)
    return issues


def _check_steps(
    steps: Sequence[tuple[int, StepDefinition]],
    base: YamlPath,
    lines: LineMap,
    evaluator: ExpressionEvaluator,
    issues: list[DefinitionIssue],
    known_names: set[str],
) -> None:
    seen: dict[str, int] = {}
    for index, step in steps:
        if step.name in seen:
            issues.append(
                lines.issue(
                    f"duplicate step name (first defined as step {seen[step.name] + 1})",
                    (*base, index, "name"),
                    step=step.name,
                    key="name",
                )
            )
        else:
            seen[step.name] = index
    names = set(seen) | known_names

    for index, step in steps:
        path = (*base, index)

        def issue(
            message: str,
            key: str,
            *sub: str | int,
            step: StepDefinition = step,
            path: YamlPath = path,
        ) -> None:
            issues.append(lines.issue(message, (*path, key, *sub), step=step.name, key=key))

        if isinstance(step, (StandardStep, DecisionStep, HumanInLoopStep)):
            for r, route in enumerate(step.routes):
                if route.default is not None and r != len(step.routes) - 1:
                    issue("a 'default' route must be the last route", "routes", r, "default")
                if route.destination not in names:
                    key = "default" if route.default is not None else "target"
                    issue(f"route target '{route.destination}' is not a step", "routes", r, key)
                if route.condition is not None:
                    try:
                        evaluator.validate(route.condition)
                    except ExpressionError as exc:
                        issue(f"invalid condition: {exc}", "routes", r, "condition")
        if isinstance(step, DecisionStep) and not step.routes and step.function is None:
            issue("a DECISION step needs 'routes' or a 'function' that jumps", "routes")
        if step.next is not None and step.next != END and step.next not in names:
            issue(f"'next' names unknown step '{step.next}' (or use END)", "next")
        if step.dynamic_injection is not None:
            graph = any(other.dependencies for _, other in steps)
            if graph:
                issue(
                    "dynamic_injection is not supported in a workflow with 'dependencies'",
                    "dynamic_injection",
                )
            for r, rule in enumerate(step.dynamic_injection.rules):
                if rule.condition is not None:
                    try:
                        evaluator.validate(rule.condition)
                    except ExpressionError as exc:
                        issue(f"invalid condition: {exc}", "dynamic_injection", "rules", r)
        for d, dependency in enumerate(step.dependencies):
            if dependency not in names:
                issue(f"dependency '{dependency}' is not a step", "dependencies", d)
            elif dependency == step.name:
                issue("a step cannot depend on itself", "dependencies", d)
        if isinstance(step, LoopStep):
            if step.while_condition is not None:
                try:
                    evaluator.validate(step.while_condition)
                except ExpressionError as exc:
                    issue(f"invalid condition: {exc}", "while_condition")
            body = list(enumerate(step.loop_body))
            _check_steps(body, (*path, "loop_body"), lines, evaluator, issues, set())


def _check_cycles(
    steps: Sequence[tuple[int, StepDefinition]], lines: LineMap, issues: list[DefinitionIssue]
) -> None:
    graph = {step.name: list(step.dependencies) for _, step in steps}
    position = {step.name: index for index, step in steps}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        trail.append(name)
        for dependency in graph.get(name, []):
            if dependency not in graph:
                continue
            if state.get(dependency) == 1:
                cycle = [*trail[trail.index(dependency) :], dependency]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    issues.append(
                        lines.issue(
                            "Circular dependency detected: " + " -> ".join(cycle),
                            ("steps", position[dependency], "dependencies"),
                            step=dependency,
                            key="dependencies",
                        )
                    )
            elif state.get(dependency) is None:
                visit(dependency, trail)
        trail.pop()
        state[name] = 2

    for _, step in steps:
        if step.name not in state:
            visit(step.name, [])
