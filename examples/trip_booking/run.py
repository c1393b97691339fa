"""Run the trip-booking saga on the default store (the SQLite file ``ruvon.db``).

    python examples/trip_booking/run.py

Three trips: the first is booked and paid. The second's card is declined, so its car, hotel and
flight are cancelled, newest first, and the trip ends FAILED_ROLLED_BACK. The third's card is
declined too, and the hotel's cancellation fails: that is recorded (COMPENSATE_FAILED) and the
rollback goes on. A *new* builder then reads the compensation log from the database, as an
operator's tool would. Each compensation is committed as it completes, so a process that dies in
the middle of a rollback leaves a run that ``workflow.resume_rollback()`` finishes later.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from ruvon import Workflow, WorkflowBuilder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # makes the example's `trip_booking` package importable
CONFIG = HERE / "config"


def trip(trip_id: str, destination: str, card: str) -> dict[str, object]:
    return {
        "trip_id": trip_id,
        "traveller": "ada",
        "destination": destination,
        "nights": 3,
        "card": card,
    }


def show(workflow: Workflow) -> None:
    state = workflow.state
    booked = [ref for ref in (state.flight, state.hotel, state.car) if ref]
    line = f"{state.trip_id} {workflow.status.value:<18}"
    if workflow.status.value == "COMPLETED":
        line += f" price={state.price} booked={','.join(booked)} payment={state.payment}"
    else:
        line += f" {workflow.error_message} | cancelled={','.join(state.cancelled)}"
        if booked:
            line += f" still booked={','.join(booked)}"
    print(line)


async def main() -> None:
    from trip_booking.steps import PaymentDeclined  # importable once HERE is on the path

    builder = WorkflowBuilder(config_dir=CONFIG)  # persistence: RUVON_DATABASE_URL or ./ruvon.db
    ids = []
    for trip_id, destination, card in (
        ("T-100", "Lisbon", "4000000000000001"),
        ("T-200", "Oslo", "4000000000000002"),
        ("T-300", "Atlantis", "4000000000000002"),
    ):
        workflow = await builder.create_workflow("TripBooking", trip(trip_id, destination, card))
        # A declined card re-raises PaymentDeclined once the bookings are undone.
        with contextlib.suppress(PaymentDeclined):
            await workflow.run()
        show(workflow)
        ids.append(workflow.id)
    await builder.close()

    # Later, elsewhere: nothing is shared with the code above but the database.
    operator = WorkflowBuilder(config_dir=CONFIG)
    atlantis = await operator.load_workflow(ids[2])
    print(f"compensation log of {atlantis.state.trip_id}:")
    for entry in await atlantis.persistence.get_compensation_log(atlantis.id):
        line = f"  {entry.action_type:<17} {entry.step_name:<11} {entry.error_message or ''}"
        print(line.rstrip())
    trail = await atlantis.persistence.get_audit_log(atlantis.id)
    print(
        "audit:",
        " > ".join(f"{e.event_type}{f'({e.step_name})' if e.step_name else ''}" for e in trail),
    )
    await operator.close()


if __name__ == "__main__":
    asyncio.run(main())
