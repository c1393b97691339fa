"""Declared dependencies (DAG mode): which steps are ready, and which a route leaves out.

A workflow is in DAG mode when any step declares ``dependencies``. A step without them then
depends on the step before it in the file, so "the default is sequential" still holds. A step
is *ready* when it is pending and every dependency is completed or skipped; the ready steps
form the next *stage*. These are pure functions of the compiled steps and the progress record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ruvon.definition.compiled import CompiledStep
from ruvon.progress import Progress, StepStatus

__all__ = ["Dependencies", "dependencies_of", "ready_steps", "skipped_by_route"]

Dependencies = Mapping[str, tuple[str, ...]]
"""Step name -> the names it depends on (explicit or implied)."""

_DONE = frozenset({StepStatus.COMPLETED.value, StepStatus.SKIPPED.value})


def dependencies_of(steps: Sequence[CompiledStep]) -> Dependencies | None:
    """The dependency graph, or None when no step declares ``dependencies`` (file order)."""
    if not any(step.definition.dependencies for step in steps):
        return None
    graph: dict[str, tuple[str, ...]] = {}
    for index, step in enumerate(steps):
        declared = tuple(step.definition.dependencies)
        graph[step.name] = declared or ((steps[index - 1].name,) if index else ())
    return graph


def ready_steps(
    steps: Sequence[CompiledStep], graph: Dependencies, progress: Progress
) -> list[str]:
    """The pending steps whose dependencies are all completed or skipped, in file order."""
    statuses = progress.steps
    return [
        step.name
        for step in steps
        if step.name not in statuses
        and all(statuses.get(dependency) in _DONE for dependency in graph[step.name])
    ]


def skipped_by_route(
    steps: Sequence[CompiledStep],
    graph: Dependencies,
    progress: Progress,
    destinations: Sequence[str],
    chosen: str | None,
) -> list[str]:
    """The steps a route choice leaves out: the routing step's other destinations, and then
    every pending step all of whose dependencies are left out — so that nothing downstream
    waits for a branch that will never run."""
    statuses = dict(progress.steps)
    skipped = [
        name for name in dict.fromkeys(destinations) if name != chosen and name not in statuses
    ]
    for name in skipped:
        statuses[name] = StepStatus.SKIPPED.value
    changed = bool(skipped)
    while changed:
        changed = False
        for step in steps:
            name = step.name
            needs = graph[name]
            if name in statuses or not needs:
                continue
            if all(statuses.get(d) == StepStatus.SKIPPED.value for d in needs):
                statuses[name] = StepStatus.SKIPPED.value
                skipped.append(name)
                changed = True
    return skipped
