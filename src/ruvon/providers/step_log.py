"""The per-step lines of the execution log, read from the audit entries of step commits.

Every executed step has an INFO line in its workflow's execution log (``Starting step: <name>
(completed in 1.2 ms)``). The line is not a second row written with the step: every step commit
already writes an audit entry (``STEP_EXECUTED``, ``STEP_FAILED``, ...) in the same transaction,
and the line says nothing that entry does not. So the stores derive the line from the entry when
the log is read, and a step commit costs one row less. The rows the engine writes to the log
(errors, recovery notes) and the derived lines are read together, in the order written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from ruvon.providers.records import AuditEvent, LogEntry

__all__ = ["STEP_LOG_EVENTS", "merge_logs", "step_log_entry", "wants_step_lines"]

_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


def _duration(event: AuditEvent) -> str:
    return f"{event.duration_ms or 0.0:.1f} ms"


def _executed(event: AuditEvent) -> str:
    text = f"completed in {_duration(event)}"
    jumped = (event.data or {}).get("jumped_to")
    return f"{text}; jumped to {jumped}" if jumped else text


def _dispatched(event: AuditEvent) -> str:
    return f"dispatched, token {(event.data or {}).get('token')}"


_OUTCOMES: dict[str, Callable[[AuditEvent], str]] = {
    "STEP_EXECUTED": _executed,
    "STEP_PROGRESSED": lambda event: f"part done in {_duration(event)}",
    "STEP_DISPATCHED": _dispatched,
    "STEP_FAILED": lambda event: "failed",
}

STEP_LOG_EVENTS: tuple[str, ...] = (*_OUTCOMES, "WORKFLOW_PAUSED", "WORKFLOW_COMPLETED")
"""The audit event types that stand for a line of the execution log."""


def step_log_entry(event: AuditEvent) -> LogEntry:
    """The INFO log line an audit entry of :data:`STEP_LOG_EVENTS` stands for: ``Starting step:
    <name> (<outcome>)``, ``Workflow waits (<status>) at step <name>``, ``Workflow completed``.
    Its ``id`` is None (it is no log row); ``metadata`` names the audit entry."""
    if event.event_type == "WORKFLOW_COMPLETED":
        message = "Workflow completed"
    elif event.event_type == "WORKFLOW_PAUSED":
        message = f"Workflow waits ({event.new_status}) at step {event.step_name}"
    else:
        message = f"Starting step: {event.step_name} ({_OUTCOMES[event.event_type](event)})"
    return LogEntry(
        "INFO",
        message,
        step_name=event.step_name,
        metadata={"audit_id": event.id, "event_type": event.event_type},
        workflow_id=event.workflow_id,
        logged_at=event.timestamp,
    )


def wants_step_lines(level: str | None) -> bool:
    """Whether a log read filtered on ``level`` includes the derived lines (they are INFO)."""
    return level is None or level.upper() == "INFO"


def merge_logs(
    stored: Iterable[LogEntry], derived: Iterable[LogEntry], limit: int
) -> list[LogEntry]:
    """The first ``limit`` lines of two logs, each in the order written, by time. The lines of
    one commit share its time: the step's own line comes first, then what was logged with it,
    then the run's status change (``Workflow waits``, ``Workflow completed``)."""

    def key(entry: LogEntry) -> tuple[datetime, int]:
        return (entry.logged_at or _EARLIEST, _rank(entry))

    return sorted([*derived, *stored], key=key)[: max(limit, 0)]  # stable: ties keep their order


def _rank(entry: LogEntry) -> int:
    if entry.id is not None:
        return 1  # a stored row
    event_type = (entry.metadata or {}).get("event_type", "")
    return 2 if event_type.startswith("WORKFLOW_") else 0
