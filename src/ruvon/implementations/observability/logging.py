"""An observer that writes every workflow event to the ``ruvon.events`` logger."""

from __future__ import annotations

import json
import logging
from typing import Any

from ruvon.providers.observer import WorkflowObserver

__all__ = ["LoggingObserver", "StructuredLogFormatter"]


class LoggingObserver(WorkflowObserver):
    """Logs events (``workflow.started``, ``step.executed`` …) with structured ``extra`` fields."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("ruvon.events")
        self.level = level

    def _log(self, event: str, **fields: Any) -> None:
        self.logger.log(self.level, event, extra={"event": event, "fields": fields})

    async def on_workflow_started(
        self, workflow_id: str, workflow_type: str, initial_state: Any
    ) -> None:
        self._log("workflow.started", workflow_id=workflow_id, workflow_type=workflow_type)

    async def on_step_executed(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int,
        status: str,
        result: dict[str, Any] | None,
        current_state: Any,
        duration_ms: float | None = None,
    ) -> None:
        self._log(
            "step.executed",
            workflow_id=workflow_id,
            step_name=step_name,
            step_index=step_index,
            status=status,
            duration_ms=duration_ms,
        )

    async def on_step_failed(
        self,
        workflow_id: str,
        step_name: str,
        step_index: int,
        error_message: str,
        current_state: Any,
    ) -> None:
        self.logger.error(
            "step.failed",
            extra={
                "event": "step.failed",
                "fields": {
                    "workflow_id": workflow_id,
                    "step_name": step_name,
                    "error": error_message,
                },
            },
        )

    async def on_workflow_status_changed(
        self,
        workflow_id: str,
        old_status: str,
        new_status: str,
        current_step_name: str | None,
        final_result: dict[str, Any] | None = None,
    ) -> None:
        self._log(
            "workflow.status_changed",
            workflow_id=workflow_id,
            old_status=old_status,
            new_status=new_status,
            current_step=current_step_name,
        )

    async def on_workflow_completed(
        self, workflow_id: str, workflow_type: str, final_state: Any
    ) -> None:
        self._log("workflow.completed", workflow_id=workflow_id, workflow_type=workflow_type)

    async def on_workflow_failed(
        self, workflow_id: str, workflow_type: str, error_message: str, current_state: Any
    ) -> None:
        self._log(
            "workflow.failed",
            workflow_id=workflow_id,
            workflow_type=workflow_type,
            error=error_message,
        )


class StructuredLogFormatter(logging.Formatter):
    """Formats records as JSON lines, including the ``fields`` of LoggingObserver events."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        return json.dumps(payload, default=str)
