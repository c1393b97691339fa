"""The providers a step kind may need beyond the workflow's own persistence, execution,
expressions and templates: the HTTP client, the secrets and whatever starts other workflows.
The builder fills them in; every :class:`~ruvon.steps.base.StepRun` carries them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ruvon.providers.http import HttpClient
from ruvon.providers.secrets import SecretsProvider

__all__ = ["NO_SERVICES", "StartRequest", "StepServices", "WorkflowStarter"]


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A workflow a step starts: a child it waits for, or an independent one it spawns."""

    workflow_type: str
    initial_data: Mapping[str, Any]
    idempotency_key: str
    """Derived from the starting run and step (and the attempt): running the step again after
    a crash finds the workflow it already started instead of starting a second one."""
    parent_execution_id: str | None = None
    """Set for a child (its parent waits for it); ``None`` for a spawned, independent run."""
    owner_id: str | None = None
    org_id: str | None = None
    data_region: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class WorkflowStarter(Protocol):
    """Starts workflows for steps and tells parents about their children (the builder)."""

    async def start_workflow_for(self, request: StartRequest) -> Any:
        """Create (or, for a known idempotency key, find) the workflow; do not run it. Returns
        the ``Workflow``."""
        ...

    async def notify_parent(self, child: Any) -> None:
        """Tell the parent of ``child`` (a ``Workflow``) where its child is now, and go on up
        the chain of parents."""
        ...


@dataclass(frozen=True, slots=True)
class StepServices:
    """Optional collaborators of step kinds (``None``: the kind uses its default or refuses)."""

    http_client: HttpClient | None = None
    secrets: SecretsProvider | None = None
    starter: WorkflowStarter | None = None
    """What starts child and spawned workflows (the builder)."""
    retry_park_after_seconds: float | None = 30.0
    """A retry backoff this long or longer is not waited for in the process: the run waits
    with a wake-up time (``Workflow.retry_at``) that the worker honours. ``None``: always wait
    in the process."""
    monitor: Any = None
    """The engine's heartbeat (``ruvon.step_monitor.StepMonitor``): every running step is
    registered with it; ``None``: no heartbeats."""
    lease_seconds: float = 60.0
    """How long a driver's lease on a run holds without a renewal (a commit that goes on, or
    the heartbeat of a long step); see :mod:`ruvon.providers.leases`."""
    compiler: Callable[[Mapping[str, Any], str], Any] | None = None
    """Compiles a definition snapshot (of the run with the given id): a run's definition with
    dynamically injected steps."""


NO_SERVICES = StepServices()
