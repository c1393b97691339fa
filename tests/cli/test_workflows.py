"""``ruvon list|start|show|resume|retry|cancel|logs|metrics`` and ``ruvon interactive run``,
run as the installed console script on the order-approval example, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Cli, Result

LARGE = {
    "order_id": "A-1",
    "customer": "ACME",
    "items": [{"sku": "X", "quantity": 10, "unit_price": 500}],
}
SMALL = {
    "order_id": "A-2",
    "customer": "ACME",
    "items": [{"sku": "Y", "quantity": 1, "unit_price": 10}],
}
APPROVAL = {"approved": True, "approver": "Ann", "comment": "ok"}
MISSING = "00000000-0000-0000-0000-000000000000"

# Two workflows outside the registry, each file naming its own state model (they run through
# ``start --config FILE``): Flaky's middle step fails while ./fail.flag exists, which is what
# retry is for; Survey asks for typed fields, for the interactive prompts.
FLAKY_YAML = """\
workflow_type: Flaky
initial_state_model: cli_steps.FlakyState
steps:
  - name: First
    function: cli_steps.first
  - name: Fragile
    function: cli_steps.fragile
  - name: Last
    function: cli_steps.last
"""
SURVEY_YAML = """\
workflow_type: Survey
initial_state_model: cli_steps.SurveyState
steps:
  - name: Ask
    type: HUMAN_IN_LOOP
    input_model: cli_steps.SurveyInput
"""
STEPS = """\
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, Field


class FlakyState(BaseModel):
    runs: list[str] = []


def first(state, context):
    return {"runs": [*state.runs, "First"]}


def fragile(state, context):
    if Path("fail.flag").exists():
        raise RuntimeError("the flag is up")
    return {"runs": [*state.runs, "Fragile"]}


def last(state, context):
    return {"runs": [*state.runs, "Last"]}


class Color(str, Enum):
    RED = "red"
    GREEN = "green"


class SurveyInput(BaseModel):
    color: Color
    count: int = Field(gt=0, description="How many, at least one.")
    tags: list[str] = []
    note: str | None = None


class SurveyState(BaseModel):
    color: str | None = None
    count: int | None = None
    tags: list[str] = []
    note: str | None = None
"""


def ok(result: Result) -> Result:
    """``result`` after checking the command succeeded (stderr shown otherwise)."""
    assert result.code == 0, result.err
    return result


def error_line(result: Result, code: int) -> str:
    """The one line a failing command writes on stderr, after checking its exit code and that
    stdout stayed empty."""
    assert result.code == code, (result.out, result.err)
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    return lines[0]


def start_json(cli: Cli, data: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = ok(
        cli("start", "OrderApproval", "--data", json.dumps(data), "--json")
    ).json()
    return document


def show_json(cli: Cli, workflow_id: str) -> dict[str, Any]:
    document: dict[str, Any] = ok(cli("show", workflow_id, "--json")).json()
    return document


@pytest.fixture
def flaky(project: Path) -> Path:
    """The Flaky and Survey workflow files and their step module; Flaky fails for now."""
    (project / "cli_steps.py").write_text(STEPS)
    (project / "survey.yaml").write_text(SURVEY_YAML)
    path = project / "flaky.yaml"
    path.write_text(FLAKY_YAML)
    (project / "fail.flag").write_text("")
    return path


# -- the life cycle ------------------------------------------------------------------------


def test_a_large_order_waits_for_a_manager_and_completes_when_resumed(cli: Cli) -> None:
    started = start_json(cli, LARGE)
    workflow_id = started["id"]
    assert started["status"] == "WAITING_HUMAN"
    assert started["current_step"] == "Manager_Approval"
    assert started["state"]["total"] == 5000.0

    waiting = ok(cli("list", "--status", "WAITING_HUMAN", "--json")).json()
    assert [w["id"] for w in waiting] == [workflow_id]
    assert waiting[0]["workflow_type"] == "OrderApproval"
    assert "definition_snapshot" not in waiting[0]
    assert ok(cli("list", "--status", "completed", "--json")).json() == []
    table = ok(cli("list")).out
    assert workflow_id in table
    assert "WAITING_HUMAN" in table and "Manager_Approval" in table
    assert "Total: 1 workflow(s)" in table

    resumed = ok(cli("resume", workflow_id, "--input", json.dumps(APPROVAL))).out
    assert f"Workflow resumed: {workflow_id}" in resumed
    assert "Status:       COMPLETED" in resumed

    shown = show_json(cli, workflow_id)
    assert shown["status"] == "COMPLETED"
    assert shown["state"]["outcome"] == "fulfilled (5000.00 approved by Ann)"
    steps = {step["name"]: step["status"] for step in shown["steps"]}
    assert steps["Manager_Approval"] == "completed"
    assert steps["Auto_Approve"] == "skipped"

    entries = ok(cli("logs", workflow_id, "--json")).json()
    assert entries and all(entry["workflow_id"] == workflow_id for entry in entries)
    logged = {entry["step_name"] for entry in entries}
    assert {"Validate_Order", "Manager_Approval", "Complete_Order"} <= logged
    only = ok(cli("logs", workflow_id, "--step", "Complete_Order", "--json")).json()
    assert only and {entry["step_name"] for entry in only} == {"Complete_Order"}
    assert ok(cli("logs", workflow_id, "--level", "error", "--json")).json() == []
    assert len(ok(cli("logs", workflow_id, "--limit", "1", "--json")).json()) == 1
    assert "Validate_Order" in ok(cli("logs", workflow_id)).out


def test_show_prints_the_overview_steps_state_logs_and_metrics(cli: Cli) -> None:
    workflow_id = start_json(cli, LARGE)["id"]

    out = ok(cli("show", workflow_id, "--state", "--logs", "--metrics")).out

    assert f"Workflow:     {workflow_id}" in out
    assert "Type:         OrderApproval (version 1.0)" in out
    assert "Status:       WAITING_HUMAN" in out
    assert "Current Step: Manager_Approval" in out
    assert "✅ Validate_Order (completed)" in out
    assert "⏸ Manager_Approval (pending)" in out
    assert '"total": 5000.0' in out  # the state
    assert "step_duration_ms" in out  # the metrics
    document = ok(cli("show", workflow_id, "--logs", "--metrics", "--json")).json()
    assert {"logs", "metrics", "steps", "state"} <= set(document)
    assert document["metrics"][0]["metric_name"] == "step_duration_ms"


def test_a_small_order_completes_in_the_start_call(cli: Cli) -> None:
    out = ok(cli("start", "OrderApproval", "--data", json.dumps(SMALL))).out

    assert out.startswith("Workflow started: ")
    assert "Status:       COMPLETED" in out
    workflow_id = out.split()[2]
    assert show_json(cli, workflow_id)["state"]["approver"] == "auto"


def test_start_reads_the_data_from_a_file_and_hints_at_the_input(cli: Cli, project: Path) -> None:
    (project / "order.json").write_text(json.dumps(LARGE))

    out = ok(cli("start", "OrderApproval", "--data-file", "order.json")).out

    assert "Status:       WAITING_HUMAN" in out
    assert "Input: approved (boolean, required), approver (string, required)" in out
    assert "Next: ruvon resume " in out


def test_metrics_of_one_run_of_a_type_and_their_summary(cli: Cli) -> None:
    workflow_id = start_json(cli, SMALL)["id"]

    points = ok(cli("metrics", "--workflow-id", workflow_id, "--json")).json()
    assert points and all(point["workflow_id"] == workflow_id for point in points)
    assert {point["metric_name"] for point in points} == {"step_duration_ms"}
    assert ok(cli("metrics", "--type", "Nothing", "--json")).json() == []
    summary = ok(cli("metrics", "--type", "OrderApproval", "--summary", "--json")).json()
    assert summary["total_metrics"] == len(points)
    assert summary["workflows"] == 1
    assert summary["metrics"]["step_duration_ms"]["count"] == len(points)
    assert f"Total metrics: {len(points)}" in ok(cli("metrics", "--summary")).out
    assert "step_duration_ms" in ok(cli("metrics")).out


def test_an_empty_database_has_no_workflows(cli: Cli) -> None:
    assert ok(cli("list", "--json")).json() == []
    assert "No workflows found" in ok(cli("list")).out
    assert ok(cli("metrics", "--json")).json() == []


# -- bad input -----------------------------------------------------------------------------


def test_invalid_resume_input_names_the_field_and_changes_nothing(cli: Cli) -> None:
    workflow_id = start_json(cli, LARGE)["id"]
    before = show_json(cli, workflow_id)

    def resume(given: dict[str, Any]) -> str:
        return error_line(cli("resume", workflow_id, "--input", json.dumps(given)), 1)

    empty = resume({"approved": True, "approver": ""})
    missing = resume({"approver": "Ann"})
    wrong = resume({"approved": "perhaps", "approver": "Ann"})

    assert "Invalid input for step 'Manager_Approval': approver:" in empty
    assert "approved: Field required" in missing
    assert "approved:" in wrong
    after = show_json(cli, workflow_id)
    assert after["status"] == "WAITING_HUMAN"
    assert after["version"] == before["version"]
    assert after["state"] == before["state"]


def test_bad_json_and_bad_arguments_are_exit_2(cli: Cli, project: Path) -> None:
    line = error_line(cli("start", "OrderApproval", "--data", '{"order_id": '), 2)
    assert line.startswith("Error: --data is not valid JSON")
    not_object = error_line(cli("start", "OrderApproval", "--data", "[1]"), 2)
    assert "must be a JSON object" in not_object
    (project / "bad.json").write_text("{nope")
    assert "--input is not valid JSON" in error_line(
        cli("resume", MISSING, "--input-file", "bad.json"), 2
    )
    assert "Unknown status 'SLEEPING'" in error_line(cli("list", "--status", "SLEEPING"), 2)
    assert ok(cli("list", "--json")).json() == []  # nothing was created


def test_initial_data_that_does_not_fit_the_state_model_is_exit_1(cli: Cli) -> None:
    line = error_line(cli("start", "OrderApproval", "--data", '{"order_id": "A-3"}'), 1)

    assert "customer" in line and "items" in line
    assert ok(cli("list", "--json")).json() == []


@pytest.mark.parametrize("workflow_id", [MISSING, "not-a-uuid"])
def test_an_unknown_id_is_exit_4(cli: Cli, workflow_id: str) -> None:
    for command in (
        ["show", workflow_id],
        ["show", workflow_id, "--json"],
        ["resume", workflow_id, "--input", "{}"],
        ["retry", workflow_id],
        ["cancel", workflow_id, "--force"],
        ["logs", workflow_id],
        ["metrics", "--workflow-id", workflow_id],
    ):
        assert error_line(cli(*command), 4) == f"Error: Workflow not found: {workflow_id}"


def test_an_unknown_type_is_exit_1_and_names_the_known_ones(cli: Cli) -> None:
    line = error_line(cli("start", "Nothing", "--json"), 1)

    assert "'Nothing'" in line
    assert line.endswith("Known types: OrderApproval.")


# -- cancel --------------------------------------------------------------------------------


def test_cancel_with_force_and_a_reason(cli: Cli) -> None:
    workflow_id = start_json(cli, LARGE)["id"]

    out = ok(cli("cancel", workflow_id, "--reason", "duplicate order", "--force")).out

    assert f"Workflow cancelled: {workflow_id}" in out
    assert "Reason: duplicate order" in out
    shown = show_json(cli, workflow_id)
    assert shown["status"] == "CANCELLED"
    assert shown["metadata"]["cancellation_reason"] == "duplicate order"
    assert ok(cli("list", "--status", "CANCELLED", "--json")).json()[0]["id"] == workflow_id
    # Cancelled is final: a second cancel is an error.
    assert "CANCELLED" in error_line(cli("cancel", workflow_id, "--force"), 1)


def test_cancel_without_a_terminal_needs_force(cli: Cli) -> None:
    workflow_id = start_json(cli, LARGE)["id"]

    line = error_line(cli("cancel", workflow_id, stdin="y\n"), 2)

    assert "pass --force" in line
    assert show_json(cli, workflow_id)["status"] == "WAITING_HUMAN"
    cancelled = ok(cli("cancel", workflow_id, "--force", "--json")).json()
    assert cancelled["status"] == "CANCELLED"


def test_a_completed_run_cannot_be_cancelled(cli: Cli) -> None:
    workflow_id = start_json(cli, SMALL)["id"]

    line = error_line(cli("cancel", workflow_id), 1)  # no question for a run that ended

    assert "COMPLETED" in line and "cannot be cancelled" in line
    assert show_json(cli, workflow_id)["status"] == "COMPLETED"


# -- retry, --config and --auto ------------------------------------------------------------


def test_retry_after_a_failed_step(cli: Cli, project: Path, flaky: Path) -> None:
    line = error_line(cli("start", "Flaky", "--config", "flaky.yaml", "--auto"), 1)
    failed = ok(cli("list", "--status", "FAILED", "--json")).json()
    assert len(failed) == 1
    workflow_id = failed[0]["id"]
    assert line == (
        f"Error: Workflow {workflow_id} is FAILED. Step 'Fragile' failed: RuntimeError: the "
        f"flag is up. Fix the cause, then: ruvon retry {workflow_id}"
    )
    assert failed[0]["error_message"] == "RuntimeError: the flag is up"
    logged = ok(cli("logs", workflow_id, "--level", "ERROR", "--json")).json()
    assert [entry["step_name"] for entry in logged] == ["Fragile"]

    unknown = error_line(cli("retry", workflow_id, "--from-step", "Nowhere"), 1)
    assert unknown == "Error: Unknown step 'Nowhere'. Available steps: First, Fragile, Last"
    # Without --auto the run is only made ACTIVE again, at the failed step.
    again = ok(cli("retry", workflow_id, "--json")).json()
    assert (again["status"], again["current_step"]) == ("ACTIVE", "Fragile")
    assert "is ACTIVE" in error_line(cli("retry", workflow_id), 1)

    (project / "fail.flag").unlink()
    # ACTIVE again: resume runs the step; it passes now, and Last remains.
    stepped = ok(cli("resume", workflow_id, "--json")).json()
    assert (stepped["status"], stepped["current_step"]) == ("ACTIVE", "Last")
    done = ok(cli("resume", workflow_id, "--auto", "--json")).json()

    assert done["status"] == "COMPLETED"
    assert done["state"]["runs"] == ["First", "Fragile", "Last"]
    assert "COMPLETED" in error_line(cli("retry", workflow_id), 1)


def test_retry_from_an_earlier_step_with_auto(cli: Cli, project: Path, flaky: Path) -> None:
    error_line(cli("start", "Flaky", "--config", str(flaky), "--auto"), 1)
    workflow_id = ok(cli("list", "--json")).json()[0]["id"]
    (project / "fail.flag").unlink()

    out = ok(cli("retry", workflow_id, "--from-step", "First", "--auto")).out

    assert f"Workflow retried: {workflow_id}" in out
    assert "Status:       COMPLETED" in out
    assert show_json(cli, workflow_id)["state"]["runs"] == ["First", "First", "Fragile", "Last"]


def test_start_without_auto_runs_one_call(cli: Cli, project: Path, flaky: Path) -> None:
    (project / "fail.flag").unlink()

    out = ok(cli("start", "Flaky", "--config", str(flaky))).out
    workflow_id = out.split()[2]

    assert "Status:       ACTIVE" in out
    assert "Current Step: Fragile" in out
    assert f"Next: ruvon resume {workflow_id} (runs Fragile), or add --auto" in out
    auto = ok(cli("start", "Flaky", "--config", str(flaky), "--auto", "--json")).json()
    assert auto["status"] == "COMPLETED"


def test_a_config_file_must_exist_and_be_of_the_type(cli: Cli, flaky: Path) -> None:
    mismatch = cli("start", "Other", "--config", str(flaky))

    assert mismatch.code == 1
    assert "workflow_type 'Flaky' does not match the registry type 'Other'" in mismatch.err
    missing = error_line(cli("start", "Flaky", "--config", "absent.yaml"), 2)
    assert missing == "Error: Workflow file not found: absent.yaml"


# -- interactive ---------------------------------------------------------------------------


def test_interactive_run_prompts_for_each_field_of_the_waiting_step(cli: Cli) -> None:
    # approved: an answer that is not a boolean first, then yes; approver; no comment.
    answers = "perhaps\ny\nAnn\n\n"

    out = ok(
        cli("interactive", "run", "OrderApproval", "--data", json.dumps(LARGE), stdin=answers)
    ).out

    assert "Step Manager_Approval waits for input." in out
    assert "approved (boolean, required)" in out
    assert "Invalid approved" in out
    assert "approver (string, required)" in out
    assert "comment (string, optional)" in out
    assert "Status:       COMPLETED" in out
    assert '"outcome": "fulfilled (5000.00 approved by Ann)"' in out
    assert ok(cli("list", "--json")).json()[0]["state"]["comment"] is None


def test_interactive_prompts_follow_the_field_types(cli: Cli, flaky: Path) -> None:
    answers = [
        "blue",  # not a choice: asked again
        "red",
        "zero",  # not an integer: asked again
        "0",  # an integer the model refuses (gt=0): the whole input is asked again
        '["a"]',
        "",
        "green",
        "3",
        "",  # tags: the model's default
        "hi",
    ]
    survey = str(flaky.with_name("survey.yaml"))

    out = ok(
        cli("interactive", "run", "Survey", "--config", survey, stdin="\n".join(answers) + "\n")
    ).out

    assert "color (red|green, required)" in out
    assert "How many, at least one." in out
    assert "count (integer, required)" in out
    assert "tags (json, optional, default [])" in out
    assert "Invalid color: choose one of red, green" in out
    assert "Invalid count" in out
    assert "Invalid input for step 'Ask': count" in out
    assert "Status:       COMPLETED" in out
    state = ok(cli("list", "--json")).json()[0]["state"]
    assert state == {"color": "green", "count": 3, "tags": [], "note": "hi"}


def test_interactive_run_stops_when_the_input_ends(cli: Cli) -> None:
    data = json.dumps(LARGE)

    result = cli("interactive", "run", "OrderApproval", "--data", data, stdin="y\n")

    assert result.code == 1
    assert result.err.strip().splitlines()[-1].startswith("Error: No more input")
    assert ok(cli("list", "--json")).json()[0]["status"] == "WAITING_HUMAN"


# -- help and JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["start"],
        ["show"],
        ["resume"],
        ["retry"],
        ["cancel"],
        ["logs"],
        ["metrics"],
        ["interactive", "run"],
    ],
)
def test_every_command_has_help_with_an_example(cli: Cli, command: list[str]) -> None:
    out = ok(cli(*command, "--help", db=False)).out

    assert f"Example: ruvon {' '.join(command)}" in out
    assert "--db" in out


def test_json_output_is_json_only(cli: Cli) -> None:
    workflow_id = start_json(cli, LARGE)["id"]
    for command in (
        ["list", "--json"],
        ["show", workflow_id, "--json"],
        ["logs", workflow_id, "--json"],
        ["metrics", "--json"],
        ["metrics", "--summary", "--json"],
        ["resume", workflow_id, "--input", json.dumps(APPROVAL), "--json"],
        ["retry", workflow_id, "--json"],  # an error: stdout stays empty
    ):
        result = cli(*command)
        if result.code == 0:
            json.loads(result.out)
            assert result.err == ""
        else:
            error_line(result, 1)
