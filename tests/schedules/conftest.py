"""Fixtures of the schedule tests: a config directory with the workflows schedules start, and a
builder on the ``store`` under test (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.schedules import steps
from tests.support.config import ConfigDir, workflow

T0 = datetime(2030, 1, 1, 0, 0, tzinfo=timezone.utc)
"""A fixed "now" the tests register schedules at (never the wall clock)."""

S = "tests.schedules.steps"

WORKFLOWS = {
    # What schedules start: the runner runs Tick, and Tock is left for later.
    "Nightly": workflow(
        "Nightly",
        f"""
        - name: Tick
          function: {S}.tick
        - name: Tock
          function: {S}.tock
        """,
    ),
    # automate_start runs Tick inside create_workflow: the runner must not run it again.
    "AutoNightly": workflow(
        "AutoNightly",
        f"""
        - name: Tick
          function: {S}.tick
        - name: Tock
          function: {S}.tock
        """,
        header="automate_start: true",
    ),
    "Strike": workflow(
        "Strike",
        f"""
        - name: Explode
          function: {S}.explode
        - name: Tock
          function: {S}.tock
        """,
    ),
    # A workflow that registers a schedule for Nightly workflows.
    "Setup": workflow(
        "Setup",
        """
        - name: Plan
          type: CRON_SCHEDULE
          schedule_name: "nightly-{{ state.order_id }}"
          cron_expression: "0 2 * * *"
          target_workflow_type: Nightly
          initial_data_template:
            order_id: "{{ state.order_id }}-night"
            amount: "{{ state.amount * 2 }}"
            customer: "{{ context.workflow_type }}"
        """,
    ),
    "SetupDefault": workflow(
        "SetupDefault",
        """
        - name: Plan
          type: CRON_SCHEDULE
          schedule: "*/15 * * * *"
          target_workflow_type: Nightly
          initial_data_template:
            order_id: "{{ workflow_id }}"
        """,
    ),
    # The expression comes from the state: checked when the step runs.
    "SetupFromState": workflow(
        "SetupFromState",
        """
        - name: Plan
          type: CRON_SCHEDULE
          schedule_name: "from-{{ state.order_id }}"
          cron_expression: "{{ state.note }}"
          target_workflow_type: Nightly
        """,
    ),
    # A literal expression is checked when the file loads.
    "BadSetup": workflow(
        "BadSetup",
        """
        - name: Plan
          type: CRON_SCHEDULE
          cron_expression: "every night at two"
          target_workflow_type: Nightly
        """,
    ),
}


@pytest.fixture(autouse=True)
def _fresh_ticks() -> Iterator[None]:
    steps.TICKS.clear()
    yield
    steps.TICKS.clear()


@pytest.fixture
def config(tmp_path: Path) -> ConfigDir:
    directory = ConfigDir(tmp_path / "config")
    directory.write_all(WORKFLOWS)
    return directory


@pytest.fixture
def builder(config: ConfigDir, store: PersistenceProvider) -> WorkflowBuilder:
    """A builder reading ``config`` and storing in the provider under test."""
    return config.builder(store)
