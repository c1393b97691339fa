"""Definition snapshots: a stored workflow runs the definition it was created with, whatever the
YAML file says now; new workflows use the new file."""

from __future__ import annotations

from ruvon import WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import STEPS as S
from tests.support.config import ConfigDir, workflow

VERSION_1 = workflow(
    "Evolving",
    f"""
    - name: One
      function: {S}.mark
    - name: Two
      function: {S}.mark
    - name: Three
      function: {S}.mark
    """,
    version="1.0",
)

# Step One now runs another function, Two is renamed, Three is gone.
VERSION_2 = workflow(
    "Evolving",
    f"""
    - name: One
      function: {S}.mark_shouting
    - name: Two_Renamed
      function: {S}.mark
    """,
    version="2.0",
)


async def test_a_stored_workflow_keeps_its_definition(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    config.write("Evolving", VERSION_1)
    old_builder = config.builder(persistence)
    old = await old_builder.create_workflow("Evolving", {"order_id": "V1"})
    await old.next_step()
    stored = await persistence.load_workflow(old.id)
    assert stored is not None
    assert stored.workflow_version == "1.0"
    assert [s["name"] for s in stored.definition_snapshot["steps"]] == ["One", "Two", "Three"]

    config.write("Evolving", VERSION_2)
    new_builder = config.builder(persistence)
    assert new_builder.get_current_version("Evolving") == "2.0"

    # The existing workflow, loaded by a builder that has only ever seen version 2.
    loaded = await new_builder.load_workflow(old.id)
    assert loaded.workflow_version == "1.0"
    assert [step.name for step in loaded.steps] == ["One", "Two", "Three"]
    assert loaded.current_step == "Two"
    assert await loaded.run() is WorkflowStatus.COMPLETED
    assert (await new_builder.load_workflow(old.id)).state.visited == ["One", "Two", "Three"]

    # A new workflow uses the new file.
    new = await new_builder.create_workflow("Evolving", {"order_id": "V2"})
    assert new.workflow_version == "2.0"
    assert [step.name for step in new.steps] == ["One", "Two_Renamed"]
    assert await new.run() is WorkflowStatus.COMPLETED
    reloaded = await config.builder(persistence).load_workflow(new.id)
    assert reloaded.state.visited == ["ONE", "Two_Renamed"]
    assert reloaded.workflow_version == "2.0"


async def test_the_builder_that_created_it_also_keeps_the_snapshot(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    config.write("Evolving", VERSION_1)
    builder = config.builder(persistence)
    old = await builder.create_workflow("Evolving", {"order_id": "V3"})

    builder.reload_workflow_type("Evolving", VERSION_2)

    loaded = await builder.load_workflow(old.id)
    assert [step.name for step in loaded.steps] == ["One", "Two", "Three"]
    await loaded.run()
    assert (await builder.load_workflow(old.id)).state.visited == ["One", "Two", "Three"]
    new = await builder.create_workflow("Evolving", {"order_id": "V4"})
    assert [step.name for step in new.steps] == ["One", "Two_Renamed"]


async def test_a_waiting_workflow_resumes_on_its_snapshot(
    config: ConfigDir, persistence: PersistenceProvider, builder: WorkflowBuilder
) -> None:
    waiting = await builder.create_workflow("Approval", {"order_id": "V5"})
    await waiting.next_step()

    # The approval step disappears from the file.
    config.write(
        "Approval",
        workflow(
            "Approval",
            f"""
            - name: Prepare
              function: {S}.mark
            """,
            version="2",
        ),
    )
    loaded = await config.builder(persistence).load_workflow(waiting.id)
    assert loaded.current_step == "Approve"
    await loaded.next_step({"approved": True, "approver": "Ann"})
    await loaded.next_step()

    final = await config.builder(persistence).load_workflow(waiting.id)
    assert final.status is WorkflowStatus.COMPLETED
    assert final.state.visited == ["Prepare", "Approve", "Ship"]
