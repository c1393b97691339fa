"""Prometheus metrics of the workflows this process drives: an observer that counts started,
completed and failed workflows by type, status changes by status, and times steps in a
histogram. The REST server exposes them at ``/metrics``; an application exposes them with
``prometheus_client.start_http_server`` or its own web framework.

Needs the optional dependency ``prometheus-client`` (extra ``server``).
"""

from __future__ import annotations

from typing import Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"PrometheusObserver needs prometheus-client: pip install 'ruvon-sdk[server]' ({missing})"
    ) from missing

__all__ = ["STEP_SECONDS_BUCKETS", "PrometheusObserver"]

STEP_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                        2.5, 5.0, 10.0, 30.0, 60.0, 300.0)  # fmt: skip
"""Step durations from half a millisecond (an engine-bound step) to five minutes."""


class PrometheusObserver:
    """Metrics (all prefixed ``ruvon_``), registered in ``registry`` (default: the global one):

    - ``ruvon_workflows_started_total{workflow_type}``
    - ``ruvon_workflows_completed_total{workflow_type}``
    - ``ruvon_workflows_failed_total{workflow_type}``
    - ``ruvon_workflow_status_changes_total{status}`` (the status reached)
    - ``ruvon_steps_total{step, outcome}`` (outcome ``completed``/``failed``)
    - ``ruvon_step_duration_seconds{step}``, a histogram of the steps that completed

    Labels are bounded by the registry's workflow types and step names, never workflow ids.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        kw: dict[str, Any] = {"registry": self.registry}
        self.started = Counter(
            "ruvon_workflows_started", "Workflows created.", ["workflow_type"], **kw
        )
        self.completed = Counter(
            "ruvon_workflows_completed", "Workflows that completed.", ["workflow_type"], **kw
        )
        self.failed = Counter(
            "ruvon_workflows_failed", "Workflows that ended failed.", ["workflow_type"], **kw
        )
        self.status_changes = Counter(
            "ruvon_workflow_status_changes", "Committed status changes.", ["status"], **kw
        )
        self.steps = Counter("ruvon_steps", "Steps run.", ["step", "outcome"], **kw)
        self.step_seconds = Histogram(
            "ruvon_step_duration_seconds",
            "How long a step took, its function and the engine's work.",
            ["step"],
            buckets=STEP_SECONDS_BUCKETS,
            **kw,
        )

    async def on_workflow_started(self, workflow_type: str) -> None:
        self.started.labels(workflow_type).inc()

    async def on_workflow_completed(self, workflow_type: str) -> None:
        self.completed.labels(workflow_type).inc()

    async def on_workflow_failed(self, workflow_type: str) -> None:
        self.failed.labels(workflow_type).inc()

    async def on_workflow_status_changed(self, new_status: str) -> None:
        self.status_changes.labels(new_status).inc()

    async def on_step_executed(self, step_name: str, duration_ms: float | None = None) -> None:
        self.steps.labels(step_name, "completed").inc()
        if duration_ms is not None:
            self.step_seconds.labels(step_name).observe(duration_ms / 1000.0)

    async def on_step_failed(self, step_name: str) -> None:
        self.steps.labels(step_name, "failed").inc()
