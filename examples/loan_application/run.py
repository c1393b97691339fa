"""Run the loan-application example on the default store (the SQLite file ``ruvon.db``).

    python examples/loan_application/run.py

Four applications: a small loan is approved by policy and paid out; a large one waits for an
underwriter, whose typed decision arrives from a *second process* (``approve.py``); a payout the
bank refuses is rolled back (the reserved funds are released); a poor credit score is declined.
The same application sent twice is one workflow (idempotency key); sent again with another
amount it is refused. Money is ``Decimal`` and days are ``date`` from end to end.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from ruvon import IdempotencyConflictError, Workflow, WorkflowBuilder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # makes the example's `loan_application` package importable
CONFIG = HERE / "config"


def application(
    app_id: str, name: str, amount: str, account: str = "DE89370400440532013000"
) -> dict[str, Any]:
    return {
        "application_id": app_id,
        "applicant": {
            "name": name,
            "date_of_birth": "1985-04-12",
            "annual_income": "98000.00",
            "bank_account": account,
        },
        "amount": amount,
        "term_months": 60,
        "requested_on": "2026-12-02",
    }


def show(workflow: Workflow) -> None:
    state = workflow.state
    print(
        f"{state.application_id} {workflow.status.value:<19} step={workflow.current_step_name} "
        f"amount={state.amount} payment={state.monthly_payment} reserved={state.funds_reserved} "
        f"| {state.outcome or '; '.join(state.history[-2:])}"
    )


async def submit(builder: WorkflowBuilder, data: dict[str, Any]) -> Workflow:
    workflow = await builder.create_workflow(
        "LoanApplication", data, idempotency_key=f"loan-{data['application_id']}", owner_id="web"
    )
    try:
        await workflow.run(actor="web-frontend")
    except RuntimeError as failure:  # a failed step fails the workflow and is re-raised
        print(f"{data['application_id']} failed: {failure}")
    return workflow


async def main() -> None:
    builder = WorkflowBuilder(config_dir=CONFIG)  # persistence: RUVON_DATABASE_URL or ./ruvon.db
    small = await submit(builder, application("L-1001", "Ada Lovelace", "12000.00"))
    show(small)
    large = await submit(builder, application("L-1002", "Alan Turing", "60000.00"))
    show(large)
    refused = await submit(
        builder, application("L-1003", "Barbara Liskov", "9000.00", account="BLOCKED-0001")
    )
    show(refused)
    declined = await submit(builder, application("L-1004", "Grace Hopper", "5000.00"))
    show(declined)

    again = await submit(builder, application("L-1001", "Ada Lovelace", "12000.00"))
    print(f"L-1001 sent again: same workflow: {again.id == small.id}")
    try:
        await submit(builder, application("L-1001", "Ada Lovelace", "99000.00"))
    except IdempotencyConflictError as conflict:
        print(f"L-1001 sent with another amount: {type(conflict).__name__}")

    waiting = await builder.list_workflows(status="WAITING_HUMAN", workflow_type="LoanApplication")
    print("underwriter inbox:", ", ".join(w.state["application_id"] for w in waiting))
    await builder.close()

    # Another process (an underwriter's web request) decides; only the database is shared.
    underwriter = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "approve.py"), large.id
    )
    if await underwriter.wait() != 0:
        sys.exit("approve.py failed")

    reader = WorkflowBuilder(config_dir=CONFIG)
    done = await reader.load_workflow(large.id)
    show(done)
    trail = await done.persistence.get_audit_log(done.id)
    decision = next(
        e for e in trail if (e.event_type, e.step_name) == ("STEP_EXECUTED", "Underwriter_Approval")
    )
    print(f"audit: {decision.user_id} sent {decision.data['input']}")
    await reader.close()


if __name__ == "__main__":
    asyncio.run(main())
