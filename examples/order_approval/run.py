"""Run the order-approval example on the default store (the SQLite file ``ruvon.db``).

    python examples/order_approval/run.py

A small order is approved automatically. A large one waits for a manager; the approval then
arrives through a *new* builder that loads the workflow from the database, as another process
(a web request, a CLI call) would.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ruvon import WorkflowBuilder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # makes the example's `order_approval` package importable
CONFIG = HERE / "config"


def show(label: str, workflow: object) -> None:
    wf = workflow
    print(
        f"{label:<34} {wf.status.value:<14} step={wf.current_step_name}  {wf.state.outcome or ''}"
    )  # type: ignore[attr-defined]


async def main() -> None:
    builder = WorkflowBuilder(config_dir=CONFIG)  # persistence: RUVON_DATABASE_URL or ./ruvon.db
    small = await builder.create_workflow(
        "OrderApproval",
        {
            "order_id": "A-100",
            "customer": "ada",
            "items": [{"sku": "pen", "quantity": 3, "unit_price": 2.5}],
        },
    )
    await small.run()
    show(f"order {small.state.order_id} (total {small.state.total})", small)

    large = await builder.create_workflow(
        "OrderApproval",
        {
            "order_id": "B-200",
            "customer": "grace",
            "items": [{"sku": "laptop", "quantity": 2, "unit_price": 1450.0}],
        },
    )
    await large.run()
    show(f"order {large.state.order_id} (total {large.state.total})", large)
    await builder.close()

    # Later, elsewhere: a manager approves. Nothing is shared with the code above but the database.
    approvals = WorkflowBuilder(config_dir=CONFIG)
    pending = await approvals.load_workflow(large.id)
    await pending.next_step({"approved": True, "approver": "manager.mia", "comment": "ok"})
    await pending.run()
    show(f"order {pending.state.order_id} after approval", pending)

    trail = await pending.persistence.get_audit_log(pending.id)
    print(
        "audit:",
        " > ".join(f"{e.event_type}{f'({e.step_name})' if e.step_name else ''}" for e in trail),
    )
    await approvals.close()


if __name__ == "__main__":
    asyncio.run(main())
