"""The YAML language as pydantic models: pure data, no imports of user code.

A workflow file parses into :class:`WorkflowDefinition`; each entry of ``steps`` into one step
model chosen by its ``type`` (a discriminated union). Unknown keys are errors. The models accept
the key spellings of the original documentation (``saga_mode``/``saga_enabled``,
``initial_state_model``/``initial_state_model_path``, ``target``/``next_step`` …).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ruvon.models import MergeConflictBehavior, MergeStrategy, StepKind
from ruvon.providers.schedules import check_cron_expression

__all__ = [
    "HTTP_METHODS",
    "AsyncStep",
    "CronScheduleStep",
    "DecisionStep",
    "FireAndForgetStep",
    "HttpConfig",
    "HttpRetryPolicy",
    "HttpStep",
    "HumanInLoopStep",
    "LoopStep",
    "ParallelStep",
    "ParallelTask",
    "RegistryEntry",
    "RegistryFile",
    "RetryPolicy",
    "Route",
    "StandardStep",
    "StepDefinition",
    "SubWorkflowStep",
    "WorkflowDefinition",
]

_STEP_TYPE_ALIASES = {"COMPENSATABLE": "STANDARD", "CRON_SCHEDULER": "CRON_SCHEDULE"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RetryPolicy(_Strict):
    """How often a failing step is re-run before it fails the workflow.

    The delay before attempt ``n + 1`` is ``delay_seconds * backoff_multiplier ** (n - 1)``,
    capped at ``max_delay_seconds``.
    """

    max_attempts: int = Field(3, ge=1, le=100)
    """Attempts in all, the first included. Default 3."""
    delay_seconds: float = Field(1.0, ge=0, validation_alias=AliasChoices("delay_seconds", "delay"))
    """Delay before the first retry. Default 1 s."""
    backoff_multiplier: float = Field(2.0, ge=1)
    """Factor applied to the delay after each retry. Default 2."""
    max_delay_seconds: float = Field(60.0, ge=0)
    """Upper bound of any delay. Default 60 s."""

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 for the first retry)."""
        delay = self.delay_seconds * self.backoff_multiplier ** max(attempt - 2, 0)
        return float(min(delay, self.max_delay_seconds))


class HttpRetryPolicy(RetryPolicy):
    """The ``retry_policy`` of an HTTP step (in ``http_config`` or on the step): the keys of
    :class:`RetryPolicy`, with defaults of 1 attempt and 5 s delay."""

    max_attempts: int = Field(1, ge=1, le=100)
    """Attempts in all, the first included. Default 1."""
    delay_seconds: float = Field(5.0, ge=0, validation_alias=AliasChoices("delay_seconds", "delay"))
    """Delay before the first retry. Default 5 s."""


class Route(_Strict):
    """One route of a DECISION (or any) step: ``{condition, target}`` or ``{default}``."""

    condition: str | None = None
    target: str | None = Field(None, validation_alias=AliasChoices("target", "next_step"))
    default: str | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Route:
        if self.default is not None:
            if self.condition is not None or self.target is not None:
                raise ValueError("a route is either {condition, target} or {default}, not both")
        elif self.condition is None or self.target is None:
            raise ValueError("a route needs both 'condition' and 'target' (or only 'default')")
        return self

    @property
    def destination(self) -> str:
        """The step this route leads to."""
        return self.default if self.default is not None else str(self.target)


class InjectionRule(_Strict):
    """One rule of ``dynamic_injection``: when it holds after the step completed, its steps are
    inserted into this run's definition after the step (``insert_after``: after that step)."""

    condition_key: str | None = None
    """A dotted path into the state (``state.order.total`` or ``order.total``)."""
    value_match: Any = None
    """With ``condition_key``: the rule holds when the value equals this."""
    value_is_not: list[Any] | None = None
    """With ``condition_key``: the rule holds when the value is none of these."""
    condition: str | None = None
    """Instead of ``condition_key``: a condition expression (as in routes)."""
    action: Literal["INSERT_AFTER_CURRENT"] = "INSERT_AFTER_CURRENT"
    steps_to_insert: list[dict[str, Any]] = Field(min_length=1)
    insert_after: str | None = None
    audit_injection: bool = True
    allowed_tenants: list[str] | None = None
    """Only runs whose ``org_id`` is listed get the steps (None: every run)."""

    @model_validator(mode="after")
    def _one_condition(self) -> InjectionRule:
        if (self.condition_key is None) == (self.condition is None):
            raise ValueError(
                "an injection rule needs exactly one of 'condition_key' and 'condition'"
            )
        if self.condition is not None and (
            self.value_match is not None or self.value_is_not is not None
        ):
            raise ValueError("'value_match' and 'value_is_not' go with 'condition_key'")
        for index, config in enumerate(self.steps_to_insert):
            try:
                _STEP_ADAPTER().validate_python(config)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(
                    f"steps_to_insert[{index}]: {where}: {first['msg']}"
                    if where
                    else f"steps_to_insert[{index}]: {first['msg']}"
                ) from None
        return self


class DynamicInjection(_Strict):
    """``dynamic_injection``: the rule form ``{rules: [...]}``, or the expression form
    ``{condition, steps, insert_after, audit_injection, allowed_tenants}`` (read as one rule)."""

    rules: list[InjectionRule] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _expression_form(cls, value: Any) -> Any:
        if isinstance(value, dict) and "rules" not in value and "condition" in value:
            rule = {("steps_to_insert" if k == "steps" else k): v for k, v in value.items()}
            return {"rules": [rule]}
        return value


class _StepBase(_Strict):
    name: str = Field(min_length=1)
    description: str | None = None
    compensate_function: str | None = None
    input_model: str | None = None
    required_input: list[str] = Field(default_factory=list)
    automate_next: bool = False
    dependencies: list[str] = Field(default_factory=list)
    dynamic_injection: DynamicInjection | None = None
    retry_policy: RetryPolicy | None = None
    timeout_seconds: float | None = Field(None, gt=0)
    next: str | None = None
    """Explicit successor (a step name or ``END``) instead of the next step in the file."""
    compensate_on_failure: bool = False
    queue: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]+$")
    """Where a distributed execution provider (Celery) sends the step's work: an ASYNC step's
    function, a PARALLEL step's tasks. Default: the workflow's ``data_region``, else
    ``default``."""

    @field_validator("name")
    @classmethod
    def _name_chars(cls, value: str) -> str:
        if value.strip() != value or not value:
            raise ValueError("step names may not start or end with spaces")
        return value

    @property
    def kind(self) -> StepKind:
        """The step's kind."""
        return StepKind(self.type)  # type: ignore[attr-defined]

    # -- compile hooks: what a kind needs resolved besides function/compensate_function ------

    def step_functions(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Other step functions this step calls, as (key path below the step, dotted path);
        each must accept ``(state, context)`` and is imported and inspected at load."""
        return []

    def callables(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Other dotted paths this step imports at load (any signature)."""
        return []

    def nested_steps(self) -> list[tuple[tuple[str | int, ...], list[StepDefinition]]]:
        """Steps declared inside this one (e.g. a loop body), compiled with it."""
        return []


class StandardStep(_StepBase):
    """Runs ``function`` in the process and merges its result."""

    type: Literal["STANDARD"] = "STANDARD"
    function: str
    routes: list[Route] = Field(default_factory=list)


class AsyncStep(_StepBase):
    """Runs ``function`` through the execution provider, possibly on another machine."""

    type: Literal["ASYNC"]
    function: str = Field(validation_alias=AliasChoices("function", "func_path"))
    merge_strategy: MergeStrategy = MergeStrategy.SHALLOW
    merge_conflict_behavior: MergeConflictBehavior = MergeConflictBehavior.PREFER_NEW


class DecisionStep(_StepBase):
    """Optionally runs ``function``, then jumps to the first route whose condition holds."""

    type: Literal["DECISION"]
    function: str | None = None
    routes: list[Route] = Field(default_factory=list)


class ParallelTask(_Strict):
    """One task of a static PARALLEL step."""

    name: str
    function_path: str = Field(validation_alias=AliasChoices("function_path", "function"))


class ParallelStep(_StepBase):
    """Runs several tasks concurrently and merges their results (``steps.parallel``).

    ``merge_strategy`` is SHALLOW or DEEP; it and ``merge_conflict_behavior`` (PREFER_NEW,
    PREFER_EXISTING alias PREFER_OLD, RAISE_ERROR) are case-insensitive.
    """

    type: Literal["PARALLEL"]
    tasks: list[ParallelTask] = Field(default_factory=list)
    iterate_over: str | None = None
    task_function: str | None = None
    item_var_name: str = "item"
    batch_size: int = Field(0, ge=0)
    merge_strategy: MergeStrategy = MergeStrategy.SHALLOW
    merge_conflict_behavior: MergeConflictBehavior = MergeConflictBehavior.PREFER_NEW
    allow_partial_success: bool = False
    merge_function_path: str | None = None

    def step_functions(self) -> list[tuple[tuple[str | int, ...], str]]:
        functions: list[tuple[tuple[str | int, ...], str]] = [
            (("tasks", t, "function_path"), task.function_path) for t, task in enumerate(self.tasks)
        ]
        if self.task_function is not None:
            functions.append((("task_function",), self.task_function))
        return functions

    def callables(self) -> list[tuple[tuple[str | int, ...], str]]:
        if self.merge_function_path is None:
            return []
        return [(("merge_function_path",), self.merge_function_path)]

    @model_validator(mode="after")
    def _static_or_dynamic(self) -> ParallelStep:
        if bool(self.tasks) == bool(self.iterate_over):
            raise ValueError("a PARALLEL step needs either 'tasks' or 'iterate_over' (one of them)")
        if self.iterate_over and not self.task_function:
            raise ValueError("'iterate_over' needs 'task_function'")
        names = [task.name for task in self.tasks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"task names must be unique; repeated: {', '.join(duplicates)}")
        if self.merge_strategy not in (MergeStrategy.SHALLOW, MergeStrategy.DEEP):
            raise ValueError(
                f"merge_strategy {self.merge_strategy.value} is not available for PARALLEL "
                "steps; use SHALLOW or DEEP"
            )
        return self


HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
"""The methods an HTTP step may send (case-insensitive in YAML)."""


class HttpConfig(_Strict):
    """The request an HTTP step sends (values may be templates, see ``steps.http``)."""

    method: str = "GET"
    """One of :data:`HTTP_METHODS`, or a template that renders to one. Default GET."""
    url: str
    headers: dict[str, Any] = Field(default_factory=dict)
    query_params: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    """A mapping or list is sent as JSON, a string as it is; ``None``: no body."""
    timeout: float = Field(30.0, gt=0)
    """Seconds each attempt may take, connecting included. Default 30."""
    retry_policy: HttpRetryPolicy | None = None
    """Retries of transport errors, timeouts and 5xx answers (never of 4xx)."""

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        if not isinstance(value, str) or "{{" in value or "{%" in value:
            return value
        if value.upper() not in HTTP_METHODS:
            raise ValueError(f"method must be one of {', '.join(HTTP_METHODS)} or a template")
        return value.upper()


class HttpStep(_StepBase):
    """Sends an HTTP request and stores the response under ``output_key``."""

    type: Literal["HTTP"]
    http_config: HttpConfig
    retry_policy: HttpRetryPolicy | None = None
    """As ``http_config.retry_policy`` (give one of the two)."""
    output_key: str = "http_response"
    includes: list[Literal["body", "status_code", "headers"]] | None = None
    """Without it the result is the parsed body; with it, a dict of the listed parts."""
    fail_on_status: bool = True
    merge_strategy: MergeStrategy = MergeStrategy.SHALLOW

    @model_validator(mode="after")
    def _http_keys(self) -> HttpStep:
        if self.retry_policy is not None and self.http_config.retry_policy is not None:
            raise ValueError(
                "give 'retry_policy' either in 'http_config' or on the step, not in both"
            )
        if self.merge_strategy not in (MergeStrategy.SHALLOW, MergeStrategy.DEEP):
            raise ValueError(
                f"merge_strategy {self.merge_strategy.value} is not available for HTTP "
                "steps; use SHALLOW or DEEP"
            )
        return self


class LoopStep(_StepBase):
    """Runs ``loop_body`` for each item (ITERATE) or while a condition holds (WHILE)."""

    type: Literal["LOOP"]
    mode: Literal["ITERATE", "WHILE"]
    iterate_over: str | None = None
    item_var_name: str = "item"
    while_condition: str | None = None
    max_iterations: int = Field(1000, ge=1)
    loop_body: list[StepDefinition] = Field(min_length=1)

    def nested_steps(self) -> list[tuple[tuple[str | int, ...], list[StepDefinition]]]:
        return [(("loop_body",), self.loop_body)]

    @model_validator(mode="after")
    def _mode_keys(self) -> LoopStep:
        if self.mode == "ITERATE" and not self.iterate_over:
            raise ValueError("mode ITERATE needs 'iterate_over'")
        if self.mode == "WHILE" and not self.while_condition:
            raise ValueError("mode WHILE needs 'while_condition'")
        return self


class FireAndForgetStep(_StepBase):
    """Starts an independent workflow and goes on without waiting for it."""

    type: Literal["FIRE_AND_FORGET"]
    target_workflow_type: str
    initial_data_template: dict[str, Any] = Field(default_factory=dict)


class CronScheduleStep(_StepBase):
    """Registers a cron schedule that starts ``target_workflow_type`` workflows."""

    type: Literal["CRON_SCHEDULE"]
    cron_expression: str = Field(validation_alias=AliasChoices("cron_expression", "schedule"))
    target_workflow_type: str
    schedule_name: str | None = None
    initial_data_template: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron_expression")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # A template is rendered (and checked) when the step runs.
        if "{{" in value or "{%" in value:
            return value
        return check_cron_expression(value)


class HumanInLoopStep(_StepBase):
    """Waits for a person: pauses in WAITING_HUMAN until ``next_step(user_input)``."""

    type: Literal["HUMAN_IN_LOOP"]
    function: str | None = None
    routes: list[Route] = Field(default_factory=list)
    always_pause: bool = False


class SubWorkflowStep(_StepBase):
    """Starts a child workflow and waits for it."""

    type: Literal["SUB_WORKFLOW"]
    target_workflow_type: str
    initial_data_template: dict[str, Any] = Field(default_factory=dict)


def _step_tag(value: Any) -> str:
    raw = value.get("type", "STANDARD") if isinstance(value, dict) else getattr(value, "type", "")
    tag = str(raw).upper() if raw is not None else "STANDARD"
    return _STEP_TYPE_ALIASES.get(tag, tag)


StepDefinition = Annotated[
    Annotated[StandardStep, Tag("STANDARD")]
    | Annotated[AsyncStep, Tag("ASYNC")]
    | Annotated[DecisionStep, Tag("DECISION")]
    | Annotated[ParallelStep, Tag("PARALLEL")]
    | Annotated[HttpStep, Tag("HTTP")]
    | Annotated[LoopStep, Tag("LOOP")]
    | Annotated[FireAndForgetStep, Tag("FIRE_AND_FORGET")]
    | Annotated[CronScheduleStep, Tag("CRON_SCHEDULE")]
    | Annotated[HumanInLoopStep, Tag("HUMAN_IN_LOOP")]
    | Annotated[SubWorkflowStep, Tag("SUB_WORKFLOW")],
    Discriminator(
        _step_tag,
        custom_error_type="unknown_step_type",
        custom_error_message="Unknown step type",
    ),
]
"""Any step; the ``type`` key (default STANDARD, case-insensitive) chooses the model."""


@functools.cache
def _STEP_ADAPTER() -> TypeAdapter[Any]:
    """Validates one step configuration (steps inserted by ``dynamic_injection``)."""
    return TypeAdapter(StepDefinition)


def _normalize_step_type(step: Any) -> Any:
    if isinstance(step, dict) and "type" in step and isinstance(step["type"], str):
        tag = step["type"].upper()
        step = {**step, "type": _STEP_TYPE_ALIASES.get(tag, tag)}
    if isinstance(step, dict) and isinstance(step.get("loop_body"), list):
        step = {**step, "loop_body": [_normalize_step_type(s) for s in step["loop_body"]]}
    return step


class WorkflowDefinition(_Strict):
    """A workflow file (``workflow_type``, ``steps`` …) after env and parameter substitution."""

    workflow_type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    workflow_version: str | None = None
    initial_state_model: str = Field(
        validation_alias=AliasChoices("initial_state_model", "initial_state_model_path")
    )
    description: str | None = None
    saga_enabled: bool = Field(False, validation_alias=AliasChoices("saga_enabled", "saga_mode"))
    automate_start: bool = False
    parameters: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] = Field(default_factory=dict)
    initial_data_example: dict[str, Any] | None = None
    schedule: Any = None
    requires: list[str] = Field(default_factory=list)
    steps: list[StepDefinition] = Field(min_length=1)

    @field_validator("workflow_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @field_validator("steps", mode="before")
    @classmethod
    def _step_types(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_normalize_step_type(step) for step in value]
        return value


class RegistryEntry(BaseModel):
    """One ``workflows[]`` entry of ``workflow_registry.yaml``.

    Keys other than these are workflow-file keys given inline (the entry is then the file).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    type: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    config_file: str | None = None
    initial_state_model: str | None = Field(
        None, validation_alias=AliasChoices("initial_state_model", "initial_state_model_path")
    )
    description: str | None = None
    requires: list[str] = Field(default_factory=list)
    deprecated: bool = False
    deprecation_date: str | None = None
    remove_after_date: str | None = None


class RegistryFile(_Strict):
    """``workflow_registry.yaml``: the workflow types an application knows."""

    workflows: list[RegistryEntry]
    requires: list[str] = Field(default_factory=list)


LoopStep.model_rebuild()
WorkflowDefinition.model_rebuild()
