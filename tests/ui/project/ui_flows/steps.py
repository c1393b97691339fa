"""Step functions of the browser tests' workflow."""

from __future__ import annotations

from typing import Any

from ruvon import StepContext
from ui_flows.models import BatchState, ReportState


def close(state: BatchState, context: StepContext) -> dict[str, Any]:
    return {"closed": True}


def sales(state: ReportState, context: StepContext) -> dict[str, Any]:
    return {"sales": 12}


def stock(state: ReportState, context: StepContext) -> dict[str, Any]:
    return {"stock": 30}


def check(state: ReportState, context: StepContext) -> dict[str, Any]:
    return {"checked": state.stock >= state.sales}


def price(state: ReportState, context: StepContext) -> dict[str, Any]:
    return {"price": state.sales * 2.5}


def publish(state: ReportState, context: StepContext) -> dict[str, Any]:
    return {"published": state.checked}
