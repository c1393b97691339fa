"""Stored runs (:class:`~ruvon.providers.persistence.WorkflowRecord`) and store entries as the
API's response models. Reads use the record as stored: nothing is compiled or imported to show
a run."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from ruvon.providers.persistence import (
    AuditEvent,
    LogEntry,
    MetricPoint,
    ScheduleRecord,
    WorkflowRecord,
)
from ruvon.serialization import jsonable
from ruvon_server.schemas.observability import AuditEntry, LogLine, MetricPointModel
from ruvon_server.schemas.schedules import ScheduleModel
from ruvon_server.schemas.workflows import WorkflowDetail, WorkflowSummary

__all__ = ["audit_entry", "detail", "log_line", "metric_point", "schedule", "summary"]


def _dict(value: Any) -> dict[str, Any]:
    converted = jsonable(value)
    return converted if isinstance(converted, dict) else {"value": converted}


M = TypeVar("M", bound=BaseModel)


def _view(model: type[M], record: object, *json_fields: str, **given: Any) -> M:
    """``model`` filled from ``record``'s attributes of the same names; ``json_fields`` made
    JSON-safe (a None stays None), ``given`` set as they are (they win)."""
    values = {name: getattr(record, name) for name in model.model_fields if hasattr(record, name)}
    for name in json_fields:
        if values.get(name) is not None:
            values[name] = _dict(values[name])
    return model.model_validate({**values, **given})


def summary(record: WorkflowRecord, *, with_state: bool = False) -> WorkflowSummary:
    state = _dict(record.state) if with_state else None
    return _view(WorkflowSummary, record, workflow_id=record.id, state=state)


def detail(record: WorkflowRecord, child_ids: list[str]) -> WorkflowDetail:
    return _view(
        WorkflowDetail, record, "state", "metadata", workflow_id=record.id, child_ids=child_ids
    )


def audit_entry(event: AuditEvent) -> AuditEntry:
    return _view(AuditEntry, event, "data")


def log_line(entry: LogEntry) -> LogLine:
    return _view(LogLine, entry, "metadata")


def metric_point(point: MetricPoint) -> MetricPointModel:
    return _view(MetricPointModel, point, "tags")


def schedule(record: ScheduleRecord) -> ScheduleModel:
    return _view(ScheduleModel, record, "initial_data")
