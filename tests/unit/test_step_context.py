"""The engine's fast StepContext equals what pydantic's model_construct builds."""

from __future__ import annotations

from ruvon.models import StepContext
from ruvon.steps.base import fast_context

VALUES = {
    "workflow_id": "wf-1",
    "step_name": "Charge",
    "workflow_type": "Order",
    "step_index": 2,
    "validated_input": None,
    "previous_step_result": {"a": 1},
    "loop_item": None,
    "loop_index": None,
    "parent_workflow_id": None,
    "attempt": 3,
    "persistence": object(),
}


def test_fast_context_matches_model_construct() -> None:
    fast = fast_context(dict(VALUES))
    slow = StepContext.model_construct(**VALUES)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert "persistence" not in fast.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.attempt == 3 and fast.previous_step_result == {"a": 1}


def test_fast_context_is_frozen() -> None:
    import pydantic
    import pytest

    context = fast_context(dict(VALUES))
    with pytest.raises(pydantic.ValidationError):
        context.step_name = "other"  # type: ignore[misc]
