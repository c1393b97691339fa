"""LOOP steps: run ``loop_body`` once per item of a list in the state (``mode: ITERATE``) or
while a condition holds (``mode: WHILE``), at most ``max_iterations`` times.

Each iteration runs the body steps in order on the current state. A body step's function is
called like a STANDARD step's (retry policy, timeout, user input), with ``context.loop_item``
and ``context.loop_index`` set and — in ITERATE mode — the item as the keyword argument
``item_var_name`` when the function declares it. Its result is merged into the state before the
next body step runs. A body step's ``routes`` (conditions may also read the item by its name,
``loop_item`` and ``loop_index``) and ``next`` move forward inside the body; ``next: END``
ends the iteration.

Every iteration but the last is returned as a part of the step (``StepOutcome.cursor =
{"next": <index of the next iteration>, "loop_results": [...]}``): the engine merges and
commits the fields the iteration changed before the next one starts, so a crash or a retry
resumes at the iteration in progress and finished iterations never run again. The last
iteration completes the step with ``{"loop_results": [...], "loop_iterations": n}`` besides its
changes. ``loop_results`` holds, per iteration, the body's results merged in order (in their
JSON form, the same whether or not the loop was resumed).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pydantic import BaseModel, ValidationError

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import LoopStep, Route
from ruvon.definition.validate import END
from ruvon.errors import (
    NoRouteMatchedError,
    StateValidationError,
    StepNotImplementedError,
    StepResultError,
)
from ruvon.models import MergeStrategy, StepContext, StepKind
from ruvon.serialization import jsonable
from ruvon.state import check_storable, describe_errors, merge_state
from ruvon.steps.base import (
    DIRECTIVES,
    RunnerBase,
    StepOutcome,
    StepRun,
    call_function,
    resolve_list,
)
from ruvon.steps.routing import expression_context

__all__ = ["LoopRunner"]

logger = logging.getLogger("ruvon.steps")

BODY_KINDS = frozenset({StepKind.STANDARD, StepKind.ASYNC, StepKind.DECISION})
"""The kinds a loop body can hold: steps that run a function (an ASYNC body step runs inline)
and route. Waiting, fanning out and nesting are not supported inside a body."""

_MISSING = object()


@dataclass(slots=True)
class _BodyRun(StepRun):
    """The run of one body step: the loop's run, with the body's current state and the
    iteration's item and index in the context its function gets."""

    loop: CompiledStep | None = None
    loop_item: Any = None
    loop_index: int | None = None

    def context(self, step: CompiledStep, attempt: int = 1) -> StepContext:
        """The loop step's context, named after the body step, with the item and its index."""
        context = StepRun.context(self, step, attempt)
        values = context.__dict__  # a fresh dict of this context's own (see fast_context)
        values["loop_item"] = self.loop_item
        values["loop_index"] = self.loop_index
        if self.loop is not None:
            values["step_index"] = self.loop.index
        return context


_RUN_FIELDS = tuple(f.name for f in fields(StepRun))


@dataclass(frozen=True, slots=True)
class _Iteration:
    """What one iteration did: the top-level fields it changed and the body's results."""

    state: Any
    changes: dict[str, Any]
    result: dict[str, Any]


def _label(step: CompiledStep, body: CompiledStep) -> str:
    """How errors name a body step: ``Loop/Body``."""
    return f"{step.name}/{body.name}"


def _resume_point(step_name: str, cursor: Any) -> tuple[int, list[Any]]:
    """The index of the iteration to run and the results of the finished ones."""
    if cursor is None:
        return 0, []
    start = cursor.get("next") if isinstance(cursor, Mapping) else None
    results = cursor.get("loop_results", []) if isinstance(cursor, Mapping) else None
    if (
        not isinstance(start, int)
        or isinstance(start, bool)
        or start < 0
        or not isinstance(results, list)
    ):
        raise ValueError(
            f"LOOP step '{step_name}': stored progress {cursor!r} is not "
            "{'next': <index>, 'loop_results': [...]}"
        )
    return start, list(results)


def _fields(state: Any) -> dict[str, Any]:
    """The state's top-level values by name (a pydantic model's extras included)."""
    if isinstance(state, BaseModel):
        values = dict(state.__dict__)
        if state.__pydantic_extra__:
            values.update(state.__pydantic_extra__)
        return values
    return dict(state)


def _names(state: Any, index: int, item_names: Mapping[str, Any]) -> dict[str, Any]:
    """What a loop's conditions can read: the state (and its fields), ``loop_index`` and, in
    ITERATE mode, the item (as ``loop_item`` and by ``item_var_name``)."""
    names = expression_context(state)
    names["loop_index"] = index
    names.update(item_names)
    names["state"] = state
    return names


class LoopRunner(RunnerBase):
    """Runs a LOOP step, one iteration per run (see the module's docstring)."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, LoopStep)
        for body in step.children:
            if body.kind not in BODY_KINDS:
                raise StepNotImplementedError(_label(step, body), body.kind.value)
        index, results = _resume_point(step.name, run.cursor)
        if not self._goes_on(step, definition, run, index, run.state):
            return _completed({}, results)
        item = None
        if definition.mode == "ITERATE":
            assert definition.iterate_over is not None  # the schema requires it
            items = resolve_list("LOOP", step.name, definition.iterate_over, run.state)
            item = copy.deepcopy(items[index])  # the body changes the state only by returning
        done = await self._iteration(step, definition, run, index, item)
        results.append(done.result)
        if self._goes_on(step, definition, run, index + 1, done.state):
            cursor = {"next": index + 1, "loop_results": results}
            return StepOutcome(result=done.changes, cursor=cursor)
        return _completed(done.changes, results)

    def _goes_on(
        self, step: CompiledStep, definition: LoopStep, run: StepRun, index: int, state: Any
    ) -> bool:
        """True when iteration ``index`` is to run on ``state``; a loop that ``max_iterations``
        ends before its list or condition would is logged at WARNING."""
        if definition.mode == "ITERATE":
            assert definition.iterate_over is not None  # the schema requires it
            items = resolve_list("LOOP", step.name, definition.iterate_over, state)
            more = index < len(items)
            left = f"{len(items) - index} item(s) of '{definition.iterate_over}' left"
        else:
            assert definition.while_condition is not None  # the schema requires it
            names = _names(state, index, {})
            more = bool(run.evaluator.evaluate(definition.while_condition, names))
            left = f"while_condition '{definition.while_condition}' still true"
        if more and index >= definition.max_iterations:
            logger.warning(
                "LOOP step '%s' of workflow %s stopped at max_iterations (%d) with %s; "
                "the workflow goes on",
                step.name,
                run.workflow_id,
                definition.max_iterations,
                left,
            )
            return False
        return more

    async def _iteration(
        self, step: CompiledStep, definition: LoopStep, run: StepRun, index: int, item: Any
    ) -> _Iteration:
        """Run the body once; return the fields it changed and its results merged in order."""
        iterating = definition.mode == "ITERATE"
        item_names = {"loop_item": item, definition.item_var_name: item} if iterating else {}
        user_input = dict(run.user_input)
        if iterating:
            user_input[definition.item_var_name] = item
        body_run = _BodyRun(
            **{name: getattr(run, name) for name in _RUN_FIELDS},
            loop=step,
            loop_item=item,
            loop_index=index,
        )
        body_run.user_input = user_input
        before = _fields(run.state)
        state = run.state
        merged: dict[str, Any] = {}
        body = step.children
        position = 0
        while position < len(body):
            child = body[position]
            if child.function is not None:
                body_run.state = state
                returned = await _call(step, child, body_run)
                state = _merge(step, child, state, returned)
                merged.update(returned)
                body_run.previous_step_result = returned
            names = _names(state, index, item_names)
            position = self._next_position(step, child, run, names)
        changes = {
            key: value
            for key, value in _fields(state).items()
            if before.get(key, _MISSING) is _MISSING or before[key] != value
        }
        return _Iteration(state, changes, jsonable(merged))

    def _next_position(
        self, step: CompiledStep, child: CompiledStep, run: StepRun, names: Mapping[str, Any]
    ) -> int:
        """Where the body goes on after ``child``: a matching route's target, its ``next``
        (past the last body step for END), else the following body step."""
        definition = child.definition
        routes: Sequence[Route] = getattr(definition, "routes", ())
        target = None
        for route in routes:
            if route.default is not None or (
                route.condition is not None and bool(run.evaluator.evaluate(route.condition, names))
            ):
                target = route.destination
                break
        if target is None and routes and child.kind is StepKind.DECISION:
            raise NoRouteMatchedError(
                f"No route of DECISION step '{_label(step, child)}' matched and it has no default."
            )
        if target is None:
            target = definition.next
        if target is None:
            return child.index + 1
        if target == END:
            return len(step.children)
        position = next(b.index for b in step.children if b.name == target)
        if position <= child.index:
            raise ValueError(
                f"LOOP step '{step.name}': body step '{child.name}' leads back to '{target}'; "
                "inside a loop body, routes and 'next' only go forward"
            )
        return position


def _model(state: Any) -> type[Any]:
    """The state model class of ``state`` (``dict`` for a dict state)."""
    return dict if isinstance(state, dict) else type(state)


async def _call(step: CompiledStep, child: CompiledStep, run: _BodyRun) -> dict[str, Any]:
    """Call a body step's function (retries, timeout); its result, checked to be storable."""
    assert child.function is not None
    try:
        returned = await call_function(child.function, child, run)
    except StepResultError as exc:  # not a dict: name the body step as the loop's
        detail = str(exc).removeprefix(f"Step '{child.name}' ")
        raise StepResultError(_label(step, child), detail, key=exc.key) from None
    except DIRECTIVES as directive:
        raise ValueError(
            f"LOOP step '{step.name}': body step '{child.name}' raised "
            f"{type(directive).__name__}; jumps, pauses and sub-workflows are not supported "
            "inside a loop body"
        ) from directive
    check_storable(_label(step, child), returned)
    return returned


def _merge(step: CompiledStep, child: CompiledStep, state: Any, result: dict[str, Any]) -> Any:
    """``result`` merged into ``state`` (with the body step's ``merge_strategy`` if it has one,
    else SHALLOW), validated against the state model."""
    model = _model(state)
    strategy = getattr(child.definition, "merge_strategy", MergeStrategy.SHALLOW)
    try:
        return merge_state(state, result, model, strategy)
    except ValidationError as exc:
        raise StateValidationError(
            describe_errors(exc), model=model.__name__, step_name=_label(step, child)
        ) from None


def _completed(changes: dict[str, Any], results: list[Any]) -> StepOutcome:
    """The outcome that completes the step: the last iteration's changes and the loop's
    results."""
    return StepOutcome(result={**changes, "loop_results": results, "loop_iterations": len(results)})
