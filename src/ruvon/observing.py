"""Calling observer hooks safely: only hooks an observer has, with only the keyword arguments
each hook accepts, and never letting an observer's failure reach the workflow."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from ruvon.models import WorkflowStatus
from ruvon.providers.observer import NoopObserver

__all__ = ["Notice", "ObserverHub", "resumed", "step_executed"]

logger = logging.getLogger("ruvon.observer")

Notice = tuple[str, dict[str, Any]]
"""An event for observers: the hook's name and its keyword arguments. The engine builds them
with a transition and the committer publishes them once the transition is committed."""

_ACCEPTS: dict[tuple[type, str], tuple[bool, frozenset[str]] | None] = {}


def _accepted(observer: object, hook: str) -> tuple[bool, frozenset[str]] | None:
    key = (type(observer), hook)
    if key not in _ACCEPTS:
        method = getattr(observer, hook, None)
        if method is None or not callable(method):
            _ACCEPTS[key] = None
        else:
            try:
                params = inspect.signature(method).parameters.values()
            except (TypeError, ValueError):
                _ACCEPTS[key] = (True, frozenset())
            else:
                any_kw = any(p.kind is p.VAR_KEYWORD for p in params)
                _ACCEPTS[key] = (any_kw, frozenset(p.name for p in params))
    return _ACCEPTS[key]


class ObserverHub:
    """Dispatches engine events to one observer (use a composite observer for several)."""

    __slots__ = ("_observer", "enabled")

    def __init__(self, observer: object | None) -> None:
        self._observer = observer
        # The default observer does nothing: skip building arguments for it.
        self.enabled = observer is not None and type(observer) is not NoopObserver

    async def emit(self, hook: str, **kwargs: Any) -> None:
        """Call ``observer.<hook>(**kwargs)`` with the arguments it accepts; log failures."""
        if not self.enabled:
            return
        accepted = _accepted(self._observer, hook)
        if accepted is None:
            return
        any_kw, names = accepted
        args = kwargs if any_kw else {k: v for k, v in kwargs.items() if k in names}
        try:
            outcome = getattr(self._observer, hook)(**args)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("Observer %s.%s failed", type(self._observer).__name__, hook)

    async def status_changed(
        self,
        *,
        workflow_id: str,
        workflow_type: str,
        old_status: WorkflowStatus,
        new_status: WorkflowStatus,
        current_step_name: str | None,
        last_result: dict[str, Any] | None,
        state: Any,
        error_message: str | None,
    ) -> None:
        """A committed status change, and the hook of the status it reached."""
        completed = new_status is WorkflowStatus.COMPLETED
        await self.emit(
            "on_workflow_status_changed",
            workflow_id=workflow_id,
            old_status=old_status.value,
            new_status=new_status.value,
            current_step_name=current_step_name,
            final_result=last_result if completed else None,
        )
        if new_status.is_waiting:
            human = new_status is WorkflowStatus.WAITING_HUMAN
            await self.emit(
                "on_workflow_paused",
                workflow_id=workflow_id,
                step_name=current_step_name or "",
                reason="HUMAN_IN_LOOP" if human else "PAUSE_DIRECTIVE",
            )
        elif completed:
            await self.emit(
                "on_workflow_completed",
                workflow_id=workflow_id,
                workflow_type=workflow_type,
                final_state=state,
            )
        elif new_status.is_terminal and new_status is not WorkflowStatus.CANCELLED:
            await self.emit(
                "on_workflow_failed",
                workflow_id=workflow_id,
                workflow_type=workflow_type,
                error_message=error_message or "",
                current_state=state,
            )


def resumed(
    workflow_id: str, step_name: str, waiting: WorkflowStatus, user_input: Mapping[str, Any]
) -> list[Notice]:
    """A waiting workflow got its input: it is ACTIVE again (whatever the step does next)."""
    return [
        (
            "on_workflow_resumed",
            {"workflow_id": workflow_id, "step_name": step_name, "resume_data": dict(user_input)},
        ),
        (
            "on_workflow_status_changed",
            {
                "workflow_id": workflow_id,
                "old_status": waiting.value,
                "new_status": WorkflowStatus.ACTIVE.value,
                "current_step_name": step_name,
                "final_result": None,
            },
        ),
    ]


def step_executed(
    workflow_id: str,
    step_name: str,
    step_index: int,
    label: str,
    result: dict[str, Any],
    state: Any,
    duration_ms: float,
) -> Notice:
    """A step's outcome was committed (label: COMPLETED, JUMPED or PAUSED)."""
    return (
        "on_step_executed",
        {
            "workflow_id": workflow_id,
            "step_name": step_name,
            "step_index": step_index,
            "status": label,
            "result": result,
            "current_state": state,
            "duration_ms": duration_ms,
        },
    )
