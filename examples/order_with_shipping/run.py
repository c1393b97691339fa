"""Run the order-with-shipping example on the default store (the SQLite file ``ruvon.db``).

    python examples/order_with_shipping/run.py

An order starts a Shipment *sub-workflow* and waits for it. The shipment waits for the
warehouse to confirm the parcels, so the order shows WAITING_CHILD_HUMAN_INPUT and names the
shipment as the workflow to answer. The confirmation then arrives through a *new* builder that
loads the shipment from the database, as another process (the warehouse's app) would:
completing the shipment completes the order in the same call, which also starts a
ShippingNotice it does not wait for (FIRE_AND_FORGET).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ruvon import Workflow, WorkflowBuilder, WorkflowStateError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # makes the example's `order_with_shipping` package importable
CONFIG = HERE / "config"

ORDER = {
    "order_id": "C-300",
    "customer": "ada@example.com",
    "address": "12 Analytical Row, London",
    "items": [
        {"sku": "desk", "quantity": 1, "unit_price": 420.0, "weight_kg": 31.5},
        {"sku": "lamp", "quantity": 2, "unit_price": 35.0, "weight_kg": 1.2},
    ],
}


def show(label: str, wf: Workflow) -> None:
    print(f"{label:<22} {wf.status.value:<26} step={wf.current_step_name}")


async def main() -> None:
    builder = WorkflowBuilder(config_dir=CONFIG)  # persistence: RUVON_DATABASE_URL or ./ruvon.db
    order = await builder.create_workflow("ShippedOrder", ORDER)
    await order.run()  # validates, starts the Shipment and runs it until it waits
    show(f"order {order.state.order_id}", order)

    shipment_id = order.metadata["waiting_child_id"]  # the workflow a person must answer
    shipment = await builder.load_workflow(shipment_id)
    show("  its shipment", shipment)
    print(
        f"  shipment is the order's child: {shipment.parent_execution_id == order.id}, "
        f"waiting at {order.metadata['waiting_child_step']}, {shipment.state.weight_kg} kg packed"
    )
    try:
        await order.next_step()
    except WorkflowStateError:
        print("  order.next_step() refused: the order goes on when its shipment does")
    await builder.close()

    # Later, elsewhere: the warehouse confirms. Nothing is shared with the code above but the
    # database.
    warehouse = WorkflowBuilder(config_dir=CONFIG)
    pending = await warehouse.load_workflow(shipment_id)
    await pending.next_step({"confirmed_by": "wes.warehouse", "parcels": 2})
    show("shipment confirmed", pending)

    done = await warehouse.load_workflow(order.id)
    show(f"order {done.state.order_id}", done)
    print(f"  {done.state.outcome}")
    for child_id, outcome in done.state.sub_workflow_results.items():
        print(
            f"  sub_workflow_results[{child_id[:8]}…]: {outcome['workflow_type']} "
            f"{outcome['status']}, final_result={outcome['final_result']}"
        )
    [notice_id] = done.state.spawned_workflows
    notice = await warehouse.load_workflow(notice_id)
    show("  spawned notice", notice)
    print(
        f"  notice: {notice.state.subject!r}, spawned_by the order: "
        f"{notice.metadata['spawned_by'] == done.id}, parent: {notice.parent_execution_id}"
    )

    trail = await done.persistence.get_audit_log(done.id)
    print(
        "audit:",
        " > ".join(f"{e.event_type}{f'({e.step_name})' if e.step_name else ''}" for e in trail),
    )
    await warehouse.close()


if __name__ == "__main__":
    asyncio.run(main())
