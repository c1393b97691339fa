"""Workflow runs: starting and driving them, and what the API says about them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = [
    "CancelRequest",
    "CurrentStepInfo",
    "InputRequest",
    "RetryRequest",
    "RunResponse",
    "RunSteps",
    "StartRequest",
    "StatusCounts",
    "StepError",
    "StepStateModel",
    "WorkflowDetail",
    "WorkflowList",
    "WorkflowSummary",
    "WorkflowTypeDetail",
    "WorkflowTypeInfo",
    "WorkflowTypeList",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRequest(_Request):
    workflow_type: str = Field(min_length=1, max_length=200, examples=["OrderApproval"])
    initial_data: dict[str, Any] = Field(
        default_factory=dict, description="Validated against the type's state model."
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The same key and data return the run already started with them; the "
        "same key with other data is a 409.",
    )
    data_region: str | None = Field(default=None, max_length=100)
    priority: int | None = Field(default=None, ge=0, le=1000)
    metadata: dict[str, Any] | None = None


class InputRequest(_Request):
    """The input of the step the run is at (its ``input_model`` validates it)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user_input: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("user_input", "input_data"),
        description="Also accepted as input_data.",
    )


class RetryRequest(_Request):
    from_step: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: the step that failed."
    )
    run: bool = Field(
        default=True,
        description="Run the step again now (one call: the step and the steps automate_next "
        "chains to it); false only makes the run ACTIVE at the step.",
    )


class CancelRequest(_Request):
    reason: str | None = Field(default=None, max_length=2000)


class StepError(BaseModel):
    """A step that raised during the request: the run is FAILED (or FAILED_ROLLED_BACK)."""

    type: str = Field(description="The exception's class name.")
    message: str
    step: str | None = None


class RunResponse(BaseModel):
    """Where a run is after a request drove it."""

    workflow_id: str
    workflow_type: str
    status: str
    current_step: str | None = Field(description="The step the next call runs (None: ended).")
    state: dict[str, Any]
    result: dict[str, Any] | None = Field(
        default=None, description="The result of the last step this request ran."
    )
    error: StepError | None = Field(
        default=None, description="Set when a step failed in this request."
    )
    updated_at: datetime | None = None


class WorkflowSummary(BaseModel):
    workflow_id: str
    workflow_type: str
    workflow_version: str | None = None
    status: str
    current_step: str | None = None
    owner_id: str | None = None
    org_id: str | None = None
    parent_execution_id: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    state: dict[str, Any] | None = Field(default=None, description="Only with include_state=true.")


class WorkflowList(BaseModel):
    total: int = Field(description="How many runs match the filters (without limit/offset).")
    limit: int
    offset: int
    workflows: list[WorkflowSummary]


class WorkflowDetail(BaseModel):
    workflow_id: str
    workflow_type: str
    workflow_version: str | None = None
    status: str
    current_step: str | None = None
    current_step_index: int
    state: dict[str, Any]
    metadata: dict[str, Any]
    saga_mode: bool
    owner_id: str | None = None
    org_id: str | None = None
    data_region: str | None = None
    priority: int
    idempotency_key: str | None = None
    error_message: str | None = None
    parent_execution_id: str | None = None
    blocked_on_child_id: str | None = None
    child_ids: list[str] = Field(description="The runs this one started as sub-workflows.")
    version: int = Field(description="The row version (optimistic concurrency).")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None


class CurrentStepInfo(BaseModel):
    workflow_id: str
    status: str
    name: str | None = Field(description="None once the run has ended.")
    type: str | None = None
    index: int | None = None
    description: str | None = None
    automate_next: bool = False
    waiting: bool = Field(description="The run waits for this step's input.")
    required_input: list[str] = Field(default_factory=list)
    input_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema of the step's input_model (what next/resume accept)."
    )


class WorkflowTypeInfo(BaseModel):
    workflow_type: str
    description: str | None = None
    version: str | None = None
    problem: str | None = Field(
        default=None, description="Why the type's definition does not load."
    )


class WorkflowTypeList(BaseModel):
    types: list[WorkflowTypeInfo]


class WorkflowTypeDetail(WorkflowTypeInfo):
    """A registered type and what starting one takes."""

    state_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema of the type's state model (what initial_data is validated by).",
    )
    step_count: int = 0


class StatusCounts(BaseModel):
    total: int = Field(description="Runs matching the filters, whatever their status.")
    by_status: dict[str, int] = Field(description="Each status with at least one run.")


class StepStateModel(BaseModel):
    name: str
    index: int
    kind: str = Field(description="The step type (STANDARD, DECISION, HUMAN_IN_LOOP ...).")
    state: Literal["done", "running", "waiting", "failed", "skipped", "pending", "cancelled"]
    current: bool = Field(description="The step the run's next call runs.")
    attempts: int = Field(description="How many times it ran to an end (succeeded or raised).")
    duration_ms: float | None = Field(default=None, description="Its last execution's.")
    total_duration_ms: float
    finished_at: datetime | None = None
    error: str | None = Field(default=None, description="Its last failure's, while it failed.")


class RunSteps(BaseModel):
    workflow_id: str
    status: str
    current_step: str | None = None
    dag: bool
    steps: list[StepStateModel]
