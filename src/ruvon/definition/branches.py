"""Branches that run into each other: a route target without ``next:`` continues with the step
after it in the file, which is easy to miss when that step is another branch of the same
routing step. Found at load time and reported as warnings, never as errors."""

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
from ruvon.errors import DefinitionIssue

__all__ = ["fall_through_warnings"]


def _routes_of(step: StepDefinition) -> list[str]:
    """The destinations of ``step``'s routes, in order, each once."""
    if not isinstance(step, (StandardStep, DecisionStep, HumanInLoopStep)):
        return []
    return list(dict.fromkeys(route.destination for route in step.routes))


def _ends_itself(step: StepDefinition) -> bool:
    """Whether ``step`` chooses its own successor (``next:``, routes, or a DECISION's jump)."""
    return step.next is not None or bool(_routes_of(step)) or isinstance(step, DecisionStep)


def fall_through_warnings(
    steps: Sequence[StepDefinition], lines: LineMap, base: YamlPath = ("steps",)
) -> list[DefinitionIssue]:
    """One warning per route target of an earlier step that has no ``next:`` and is followed
    in the file by another target of the same routing step (loop bodies included)."""
    warnings: list[DefinitionIssue] = []
    position = {step.name: index for index, step in enumerate(steps)}
    warned: set[str] = set()
    for index, router in enumerate(steps):
        targets = _routes_of(router)
        for target in targets:
            at = position.get(target)
            if at is None or at <= index or at + 1 >= len(steps) or target in warned:
                continue
            branch, following = steps[at], steps[at + 1]
            if _ends_itself(branch) or following.name not in targets:
                continue
            warned.add(target)
            warnings.append(
                lines.issue(
                    f"step '{target}' is a branch of '{router.name}' and has no 'next:'; it "
                    f"falls through into '{following.name}', another branch of "
                    f"'{router.name}'. Add 'next: <step>' (or 'next: END') to end the branch",
                    (*base, at),
                    step=target,
                )
            )
    for index, step in enumerate(steps):
        if isinstance(step, LoopStep):
            body_base = (*base, index, "loop_body")
            warnings.extend(fall_through_warnings(step.loop_body, lines, body_base))
    return warnings
