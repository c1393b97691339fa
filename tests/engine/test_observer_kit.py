"""The observers that ship with the SDK besides LoggingObserver: several observers as one
(CompositeObserver), the live event stream (WorkflowEventStream) and Prometheus metrics
(PrometheusObserver), each on real workflows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ruvon.implementations.observability.composite import CompositeObserver
from ruvon.implementations.observability.events import WorkflowEventStream
from ruvon.implementations.observability.prometheus import PrometheusObserver
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import ConfigDir

APPROVAL = {"approved": True, "approver": "Ann"}


class Steps:
    def __init__(self) -> None:
        self.names: list[str] = []

    async def on_step_executed(self, step_name: str) -> None:
        self.names.append(step_name)


class Broken:
    async def on_step_executed(self, **_: Any) -> None:
        raise RuntimeError("broken observer")


async def test_a_composite_passes_each_hook_to_every_observer(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    first, second = Steps(), Steps()
    stream = WorkflowEventStream()
    composite = CompositeObserver(first, Broken(), second, stream)
    builder = config.builder(persistence, workflow_observer=composite)
    async with stream.subscribe() as events:
        workflow = await builder.create_workflow("Approval", {"order_id": "O1"})
        await workflow.next_step()
        await workflow.next_step(APPROVAL)
        await workflow.next_step()
        seen = [await asyncio.wait_for(anext(events), 1) for _ in range(3)]
    # The broken one is logged and skipped; the others heard every step.
    assert first.names == second.names == ["Prepare", "Approve", "Ship"]
    assert [(e.old_status, e.new_status) for e in seen] == [
        ("ACTIVE", "WAITING_HUMAN"),
        ("WAITING_HUMAN", "ACTIVE"),
        ("ACTIVE", "COMPLETED"),
    ]
    assert {e.workflow_id for e in seen} == {workflow.id}
    assert seen[0].current_step == "Approve"
    assert [e.id for e in seen] == sorted(e.id for e in seen)
    assert stream.subscribers == 0  # the block ended


async def test_a_slow_subscriber_loses_its_oldest_events_and_is_told() -> None:
    stream = WorkflowEventStream(capacity=2)
    async with stream.subscribe() as events, stream.subscribe("wf-2") as only_two:
        for n in range(5):
            stream.publish(f"wf-{n % 3}", "ACTIVE", "COMPLETED", None)
        kept = [await anext(events), await anext(events)]
        assert [e.workflow_id for e in kept] == ["wf-0", "wf-1"]
        assert kept[0].dropped == 3  # wf-0, wf-1, wf-2 of the first three went
        assert (await anext(only_two)).workflow_id == "wf-2"
    with pytest.raises(ValueError, match="capacity"):
        WorkflowEventStream(capacity=0)


async def test_prometheus_counts_workflows_and_times_steps(
    config: ConfigDir, persistence: PersistenceProvider
) -> None:
    registry = CollectorRegistry()
    metrics = PrometheusObserver(registry)
    builder = config.builder(persistence, workflow_observer=metrics)

    done = await builder.create_workflow("Approval", {"order_id": "O1"})
    await done.next_step()
    await done.next_step(APPROVAL)
    await done.next_step()
    failing = await builder.create_workflow("Fragile", {"order_id": "O2"})
    await failing.next_step()
    with pytest.raises(RuntimeError):
        await failing.next_step()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("ruvon_workflows_started_total", workflow_type="Approval") == 1
    assert value("ruvon_workflows_started_total", workflow_type="Fragile") == 1
    assert value("ruvon_workflows_completed_total", workflow_type="Approval") == 1
    assert value("ruvon_workflows_failed_total", workflow_type="Fragile") == 1
    assert value("ruvon_workflow_status_changes_total", status="WAITING_HUMAN") == 1
    assert value("ruvon_steps_total", step="Explode", outcome="failed") == 1
    assert value("ruvon_steps_total", step="Ship", outcome="completed") == 1
    assert value("ruvon_step_duration_seconds_count", step="Ship") == 1
    assert (value("ruvon_step_duration_seconds_sum", step="Ship") or 0) > 0
