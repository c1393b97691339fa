"""CRON_SCHEDULE steps: register (create or replace) a cron schedule in the workflow's store.

The schedule's workflows are started later by a :class:`ruvon.scheduler.ScheduleRunner`. The
step renders ``schedule_name`` (default ``sched_<target_workflow_type>_<workflow id>``),
``cron_expression`` and ``initial_data_template`` with ``state`` (the workflow's state),
``workflow_id`` and ``context`` (``workflow_id``, ``workflow_type``, ``step_name``), and
registers the schedule enabled. Secrets are not offered to these templates: the initial data is
stored with the schedule. A literal cron expression is checked when the file loads; one that a
template produced and that is invalid fails the step (and nothing is registered).

Result: ``{"schedule_name": <the rendered name>, "next_run_at": <first fire time, ISO UTC>}``
(merged into the state for the fields the state model has).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ruvon.definition.compiled import CompiledStep
from ruvon.definition.schema import CronScheduleStep
from ruvon.errors import PersistenceError
from ruvon.steps.base import RunnerBase, StepOutcome, StepRun

__all__ = ["CronScheduleRunner"]


class CronScheduleRunner(RunnerBase):
    """Runs a CRON_SCHEDULE step."""

    async def run(self, step: CompiledStep, run: StepRun) -> StepOutcome:
        definition = step.definition
        assert isinstance(definition, CronScheduleStep)
        where = f"CRON_SCHEDULE step '{step.name}'"
        values: dict[str, Any] = {
            "state": run.state,
            "workflow_id": run.workflow_id,
            "context": {
                "workflow_id": run.workflow_id,
                "workflow_type": run.workflow_type,
                "step_name": step.name,
            },
        }
        template = definition.schedule_name or (
            f"sched_{definition.target_workflow_type}_{run.workflow_id}"
        )
        name = str(run.templates.render(template, values)).strip()
        if not name:
            raise ValueError(f"{where}: schedule_name {template!r} rendered to an empty name.")
        cron_expression = str(run.templates.render(definition.cron_expression, values))
        initial_data = run.templates.render(definition.initial_data_template, values)
        if not isinstance(initial_data, Mapping):
            raise ValueError(f"{where}: initial_data_template must render to a mapping.")
        register = getattr(run.persistence, "register_scheduled_workflow", None)
        if register is None:
            raise PersistenceError(
                f"{where}: the persistence provider {type(run.persistence).__name__} does not "
                "store schedules (it has no register_scheduled_workflow)."
            )
        try:
            schedule = await run.persistence.register_scheduled_workflow(
                name,
                definition.target_workflow_type,
                cron_expression,
                dict(initial_data),
                True,
            )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
        next_run_at = schedule.next_run_at
        return StepOutcome(
            result={
                "schedule_name": schedule.schedule_name,
                "next_run_at": None if next_run_at is None else next_run_at.isoformat(),
            }
        )
