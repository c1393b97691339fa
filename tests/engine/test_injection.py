"""Dynamic injection: a rule (key form or expression form) that holds after its step completed
inserts steps into this run only; they are committed with the step (audit DYNAMIC_INJECTION)
and survive a reload in another process; other runs of the type are untouched."""

from __future__ import annotations

import pytest

from ruvon import WorkflowStatus
from ruvon.errors import DefinitionError
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import STEPS, ConfigDir, audit_types, workflow


@pytest.fixture
def injecting(config: ConfigDir) -> ConfigDir:
    config.write(
        "Review",
        workflow(
            "Review",
            f"""
            - name: Assess
              function: {STEPS}.mark
              dynamic_injection:
                rules:
                  - condition_key: state.customer
                    value_match: vip
                    action: INSERT_AFTER_CURRENT
                    steps_to_insert:
                      - name: Gift
                        function: {STEPS}.mark
                      - name: Approve
                        type: HUMAN_IN_LOOP
                        function: {STEPS}.approve
                        input_model: {STEPS}.ApprovalInput
            - name: Ship
              function: {STEPS}.mark
            """,
        ),
    )
    config.write(
        "Large",
        workflow(
            "Large",
            f"""
            - name: Assess
              function: {STEPS}.mark
              automate_next: true
              dynamic_injection:
                condition: "state.amount > 100"
                steps:
                  - name: Audit
                    function: {STEPS}.mark
                    automate_next: true
                audit_injection: true
                allowed_tenants: [acme]
            - name: Ship
              function: {STEPS}.mark
            """,
        ),
    )
    return config


async def test_a_rule_that_holds_inserts_steps_that_survive_a_reload(
    injecting: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = injecting.builder(persistence)
    vip = await builder.create_workflow("Review", {"order_id": "I1", "customer": "vip"})
    await vip.next_step()

    assert [s.name for s in vip.steps] == ["Assess", "Gift", "Approve", "Ship"]
    assert [e["step"]["name"] for e in vip.injected_steps] == ["Gift", "Approve"]
    assert vip.current_step_name == "Gift"
    types = await audit_types(persistence, vip.id)
    assert types.count("DYNAMIC_INJECTION") == 2

    elsewhere = await injecting.builder(persistence).load_workflow(vip.id)  # another process
    assert [s.name for s in elsewhere.steps] == ["Assess", "Gift", "Approve", "Ship"]
    await elsewhere.next_step()  # Gift
    await elsewhere.next_step()  # Approve waits
    assert elsewhere.status is WorkflowStatus.WAITING_HUMAN
    await elsewhere.next_step({"approved": True, "approver": "Ann"})
    await elsewhere.next_step()
    assert elsewhere.status is WorkflowStatus.COMPLETED
    assert elsewhere.state.visited == ["Assess", "Gift", "Approve", "Ship"]

    plain = await builder.create_workflow("Review", {"order_id": "I2", "customer": "bob"})
    await plain.next_step()
    await plain.next_step()
    assert plain.status is WorkflowStatus.COMPLETED
    assert plain.state.visited == ["Assess", "Ship"]
    assert plain.injected_steps == []


async def test_the_expression_form_with_tenants(
    injecting: ConfigDir, persistence: PersistenceProvider
) -> None:
    builder = injecting.builder(persistence)
    acme = await builder.create_workflow("Large", {"order_id": "I3", "amount": 500}, org_id="acme")
    await acme.next_step()  # automate_next chains into the injected step and on
    assert acme.status is WorkflowStatus.COMPLETED
    assert acme.state.visited == ["Assess", "Audit", "Ship"]

    other = await builder.create_workflow("Large", {"order_id": "I4", "amount": 500}, org_id="x")
    await other.next_step()
    assert other.state.visited == ["Assess", "Ship"]  # not an allowed tenant
    small = await builder.create_workflow("Large", {"order_id": "I5", "amount": 5}, org_id="acme")
    await small.run()
    assert small.state.visited == ["Assess", "Ship"]


async def test_a_bad_injection_is_a_definition_error_with_its_line(config: ConfigDir) -> None:
    config.write(
        "Broken",
        workflow(
            "Broken",
            f"""
            - name: Assess
              function: {STEPS}.mark
              dynamic_injection:
                rules:
                  - condition_key: state.customer
                    condition: "state.amount > 1"
                    steps_to_insert:
                      - name: Gift
                        type: TELEPORT
            """,
        ),
    )
    with pytest.raises(DefinitionError) as caught:
        await config.builder().create_workflow("Broken", {"order_id": "I6"})
    message = str(caught.value)
    assert "broken.yaml:" in message and "step 'Assess'" in message
    assert "exactly one of 'condition_key' and 'condition'" in message
