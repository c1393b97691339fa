"""``ruvon_server.step_states`` on audit trails the HTTP tests do not make: ASYNC steps out at
a worker, a child being waited for, a DAG, a jump forward, a crashed worker, repeated runs."""

from __future__ import annotations

from ruvon.providers.records import AuditEvent, WorkflowRecord
from ruvon_server.step_states import step_states

STEPS = [("A", "STANDARD"), ("B", "ASYNC"), ("C", "STANDARD"), ("D", "STANDARD")]


def record(status: str, current: str | None) -> WorkflowRecord:
    names = [name for name, _ in STEPS]
    return WorkflowRecord(
        id="run",
        workflow_type="T",
        workflow_version=None,
        definition_snapshot={},
        state_model_path="m.S",
        status=status,
        state={},
        current_step=current,
        current_step_index=names.index(current) if current else len(names),
    )


def ran(step: str, ms: float = 2.0) -> AuditEvent:
    return AuditEvent("STEP_EXECUTED", step_name=step, duration_ms=ms)


def states(status: str, current: str | None, audit: list[AuditEvent], dag: bool = False) -> str:
    runs = step_states(record(status, current), STEPS, audit, dag=dag)
    return " ".join(f"{run.name}:{run.state}{'*' if run.current else ''}" for run in runs)


def test_a_step_out_at_a_worker_is_running() -> None:
    audit = [ran("A"), AuditEvent("STEP_DISPATCHED", step_name="B")]
    assert states("PENDING_ASYNC", "B", audit) == "A:done B:running* C:pending D:pending"


def test_a_parent_waiting_for_its_child_is_running_there() -> None:
    assert states("PENDING_SUB_WORKFLOW", "C", [ran("A"), ran("B")]) == (
        "A:done B:done C:running* D:pending"
    )


def test_an_active_run_at_a_step_is_pending_there() -> None:
    assert states("ACTIVE", "B", [ran("A")]) == "A:done B:pending* C:pending D:pending"


def test_a_jump_forward_skips_the_steps_between() -> None:
    audit = [ran("A"), AuditEvent("WORKFLOW_JUMPED", step_name="D")]
    assert states("ACTIVE", "D", audit) == "A:done B:skipped C:skipped D:pending*"


def test_a_crashed_worker_leaves_its_step_failed() -> None:
    audit = [ran("A"), AuditEvent("STEP_DISPATCHED", step_name="B")]
    assert states("FAILED_WORKER_CRASH", "B", audit) == "A:done B:failed* C:pending D:pending"
    assert states("FAILED_ROLLED_BACK", "C", [ran("A"), ran("B")]) == (
        "A:done B:done C:failed* D:pending"
    )


def test_a_dag_skips_nothing_before_it_completes() -> None:
    audit = [ran("A"), ran("C")]
    assert states("ACTIVE", "B", audit, dag=True) == "A:done B:pending* C:done D:pending"
    assert states("COMPLETED", None, audit, dag=True) == "A:done B:skipped C:done D:skipped"


def test_durations_and_attempts_add_up_over_retries() -> None:
    audit = [
        ran("A", 1.0),
        AuditEvent("STEP_FAILED", step_name="B", data={"error": "boom", "error_type": "IOError"}),
        AuditEvent("WORKFLOW_RETRIED", step_name="B"),
        ran("B", 3.0),
        ran("B", 5.0),
    ]
    runs = {run.name: run for run in step_states(record("ACTIVE", "C"), STEPS, audit)}
    assert runs["B"].state == "done"
    assert runs["B"].attempts == 3
    assert runs["B"].duration_ms == 5.0
    assert runs["B"].total_duration_ms == 8.0
    assert runs["B"].error is None
    failed = step_states(record("FAILED", "B"), STEPS, audit[:2])
    assert failed[1].state == "failed"
    assert failed[1].error == "IOError: boom"
    assert failed[1].duration_ms is None


def test_entries_of_steps_the_definition_lacks_are_ignored() -> None:
    audit = [ran("A"), ran("Injected"), AuditEvent("WORKFLOW_STARTED")]
    assert states("COMPLETED", None, audit) == "A:done B:skipped C:skipped D:skipped"
