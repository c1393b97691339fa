"""Step kinds and their runners. ``STEP_RUNNERS`` is the only switch on a step's kind."""

from __future__ import annotations

from collections.abc import Mapping

from ruvon.models import StepKind
from ruvon.steps.async_step import AsyncRunner
from ruvon.steps.base import RetryScheduled, StepOutcome, StepRun, StepRunner
from ruvon.steps.cron_schedule import CronScheduleRunner
from ruvon.steps.decision import DecisionRunner
from ruvon.steps.fire_and_forget import FireAndForgetRunner
from ruvon.steps.function import StandardRunner
from ruvon.steps.http import HttpRunner
from ruvon.steps.human import HumanInLoopRunner
from ruvon.steps.loop import LoopRunner
from ruvon.steps.parallel import ParallelRunner
from ruvon.steps.sub_workflow import SubWorkflowRunner

__all__ = ["STEP_RUNNERS", "RetryScheduled", "StepOutcome", "StepRun", "StepRunner"]

STEP_RUNNERS: Mapping[StepKind, StepRunner] = {
    StepKind.STANDARD: StandardRunner(),
    StepKind.ASYNC: AsyncRunner(),
    StepKind.DECISION: DecisionRunner(),
    StepKind.HUMAN_IN_LOOP: HumanInLoopRunner(),
    StepKind.LOOP: LoopRunner(),
    StepKind.PARALLEL: ParallelRunner(),
    StepKind.HTTP: HttpRunner(),
    StepKind.CRON_SCHEDULE: CronScheduleRunner(),
    StepKind.SUB_WORKFLOW: SubWorkflowRunner(),
    StepKind.FIRE_AND_FORGET: FireAndForgetRunner(),
}
"""The runner of each step kind that this version can run. A kind missing here is part of the
language (its files validate) but fails with StepNotImplementedError when a workflow reaches it."""
