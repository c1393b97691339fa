"""Run the order-fulfillment example on the default store (the SQLite file ``ruvon.db``).

    python examples/order_fulfillment/run.py

The steps declare ``dependencies``, so the workflow is a graph: each call runs the next *stage*,
the steps whose dependencies are all done. Checkout validates the order (stage 1) and returns.
A worker then loads the order from the database, with a ``ThreadPoolExecutionProvider``:
stock, fraud and shipping do not depend on each other, so they run at the same time on three
threads and are committed together; payment waits for all three; a PARALLEL step allocates
each order line to a warehouse (one task per line, merged DEEP); a LOOP ships each package.
Set ``RUVON_DATABASE_URL=postgresql://...`` to run it on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from ruvon import Workflow, WorkflowBuilder, WorkflowStatus
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # makes the example's `order_fulfillment` package importable
CONFIG = HERE / "config"

ORDER: dict[str, Any] = {
    "order_id": "F-1001",
    "customer": "katherine",
    "country": "DE",
    "items": [
        {"sku": "pen", "quantity": 3, "unit_price": "2.50"},
        {"sku": "ink", "quantity": 2, "unit_price": "11.90"},
        {"sku": "notebook", "quantity": 60, "unit_price": "1.20"},
    ],
}


def details(name: str, state: Any) -> str:
    """One line about what ``name`` found, from the committed state."""
    if name == "Reserve_Stock":
        hold = state.reservation
        return f"{hold.reservation_id}, {hold.units} units held"
    if name == "Check_Fraud":
        return f"score {state.fraud.score}: {state.fraud.verdict}"
    if name == "Quote_Shipping":
        return f"{state.shipping.carrier} {state.shipping.price} EUR"
    if name == "Charge_Payment":
        return (
            f"{state.charged} EUR = {state.subtotal} goods + {state.shipping.price} shipping "
            f"({state.payment_id})"
        )
    if name == "Allocate_Items":
        return f"{len(state.allocations)} tasks, merged DEEP: {state.by_warehouse}"
    if name == "Plan_Packages":
        return ", ".join(f"{p.package_id} from {p.warehouse}" for p in state.packages)
    if name == "Ship_Packages":
        shipped = ", ".join(f"{s.package_id} {s.tracking_number}" for s in state.shipments)
        return f"{state.loop_iterations} iterations: {shipped}"
    return str(state.outcome)


THREADED = {"Reserve_Stock": "reservation", "Check_Fraud": "fraud", "Quote_Shipping": "shipping"}
"""The steps whose answers record the thread that fetched them: name -> state field."""


async def checkout() -> str:
    """The web request: create the workflow, run its first stage, answer the shopper."""
    async with WorkflowBuilder(config_dir=CONFIG) as builder:  # RUVON_DATABASE_URL or ./ruvon.db
        workflow = await builder.create_workflow("OrderFulfillment", ORDER)
        await workflow.next_step()  # stage 1: Validate_Order
        print(
            f"stage 1  Validate_Order   at checkout: {workflow.status.value}, "
            f"subtotal {workflow.state.subtotal} EUR"
        )
        return workflow.id


async def stage(workflow: Workflow, number: int) -> None:
    """Run the next stage (one ``next_step`` call) and print what it committed."""
    from order_fulfillment.steps import SERVICE_LATENCY  # importable once HERE is on sys.path

    before = dict(workflow.progress.steps)
    started = time.perf_counter()
    await workflow.next_step()
    seconds = time.perf_counter() - started
    after = workflow.progress.steps
    ran = [step.name for step in workflow.steps if after.get(step.name) != before.get(step.name)]
    state = workflow.state
    if len(ran) == 1:
        print(f"stage {number}  {ran[0]:<16} {details(ran[0], state)}")
        return
    threads = sorted({getattr(state, THREADED[name]).thread for name in ran})
    print(
        f"stage {number}  {' + '.join(ran)}: committed together, "
        f"{len(threads)} threads, {seconds:.2f} s for {len(ran)} calls of {SERVICE_LATENCY} s"
    )
    for name in ran:
        thread = getattr(state, THREADED[name]).thread
        print(f"         {name:<16} {details(name, state):<28} on {thread}")


async def fulfil(workflow_id: str) -> None:
    """The fulfillment worker: load the order and run the remaining stages on a thread pool."""
    pool = ThreadPoolExecutionProvider(max_workers=4)
    async with WorkflowBuilder(config_dir=CONFIG, execution_provider=pool) as builder:
        workflow = await builder.load_workflow(workflow_id)
        print(f"worker loaded {workflow.state.order_id}: ready_steps = {workflow.ready_steps}")
        number = 1
        while workflow.status is WorkflowStatus.ACTIVE:
            number += 1
            await stage(workflow, number)
        statuses = list(workflow.progress.steps.values())
        print(
            f"{workflow.state.order_id} {workflow.status.value}: {statuses.count('completed')} "
            f"steps completed in {number} stages, ready_steps = {workflow.ready_steps}"
        )


async def main() -> None:
    workflow_id = await checkout()
    await fulfil(workflow_id)  # in a real shop: another process, any time later


if __name__ == "__main__":
    asyncio.run(main())
