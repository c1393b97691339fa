"""Step functions of the browser tests' workflow."""

from __future__ import annotations

from typing import Any

from ruvon import StepContext
from ui_flows.models import BatchState


def close(state: BatchState, context: StepContext) -> dict[str, Any]:
    return {"closed": True}
