"""One task of a PARALLEL step sent out on its own (``_workflow_fanout``): what running it
yields, how its function is bounded by the step's ``timeout_seconds``, and its outcome as the
progress record keeps it between the reports of its siblings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruvon.errors import StepTimeoutError
from ruvon.providers.execution import ParallelOutcome, StepFunction, step_result
from ruvon.serialization import jsonable
from ruvon.steps.base import _preemptible, _within
from ruvon.steps.merging import TaskError, error_type

__all__ = [
    "DispatchedRun",
    "bounded",
    "recorded_outcome",
    "stored_outcome",
]


@dataclass(frozen=True, slots=True)
class DispatchedRun:
    """What a dispatched step's function came to when a worker ran it (``run_dispatched``):
    its result or its exception, and how long it ran (seconds)."""

    step_name: str
    result: dict[str, Any] | None
    error: BaseException | None
    seconds: float


def bounded(func: StepFunction, task_name: str, timeout: float | None) -> StepFunction:
    """``func`` bounded by the step's ``timeout_seconds``: a coroutine function is awaited with
    ``asyncio.wait_for``, a plain one runs on a worker thread that is given up at the deadline
    (the step's preemptible wrapper, as for STANDARD steps). Running past it raises
    ``TimeoutError("Task '<name>' did not finish within <s> s")``, as on the in-process path;
    the function's own ``TimeoutError`` passes unchanged."""
    if timeout is None:
        return func
    preemptible = _preemptible(func)

    async def within(state: Any, context: Any, **kwargs: Any) -> Any:
        try:
            return await _within(preemptible(state, context, **kwargs), task_name, timeout)
        except StepTimeoutError as exc:
            if (exc.step_name, exc.timeout_seconds) != (task_name, timeout):
                raise  # the function's own
            raise TimeoutError(f"Task '{task_name}' did not finish within {timeout} s") from None

    return within


def stored_outcome(
    name: str, returned: Any, error: BaseException | None, seconds: float
) -> dict[str, Any]:
    """A task's outcome as the progress record keeps it (JSON): ``{"result": ..., "ms": ...}``
    or ``{"error": <message>, "error_type": <type name>, "ms": ...}``. A result that is not a
    dict (nor a model, nor None) or that the codec cannot store fails the task."""
    ms = round(seconds * 1000.0, 3)
    if error is None:
        try:
            return {"result": jsonable(step_result(name, returned)), "ms": ms}
        except Exception as exc:
            error = exc
    return {"error": str(error), "error_type": error_type(error), "ms": ms}


def recorded_outcome(name: str, stored: Mapping[str, Any]) -> ParallelOutcome:
    """A task's outcome as the merge takes it, from :func:`stored_outcome`'s record (an error
    comes back as a :class:`TaskError` with the original type's name)."""
    if "error" in stored:
        error = TaskError(str(stored.get("error_type", "Exception")), str(stored["error"]))
        return ParallelOutcome(name, None, error, float(stored["ms"]))
    return ParallelOutcome(name, dict(stored["result"]), None, float(stored["ms"]))
