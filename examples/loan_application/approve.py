"""An underwriter approves a waiting loan application, in a process of its own.

python examples/loan_application/approve.py <workflow id>
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ruvon import WorkflowBuilder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


async def main(workflow_id: str) -> None:
    async with WorkflowBuilder(config_dir=HERE / "config") as builder:
        workflow = await builder.load_workflow(workflow_id)
        decision = {
            "approved": True,
            "underwriter": "ulla.underwriter",
            "conditions": "salary account at our bank",
            "signature_pin": "2468",
        }
        await workflow.resume(decision, actor="ulla.underwriter")
        await workflow.run()
        state = workflow.state
        print(f"{state.application_id} decided by {state.approver}: {workflow.status.value}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: approve.py <workflow id>")
    asyncio.run(main(sys.argv[1]))
