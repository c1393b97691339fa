"""The providers a step kind may need beyond the workflow's own persistence, execution,
expressions and templates: the HTTP client, the secrets and whatever starts other workflows.
The builder fills them in; every :class:`~ruvon.steps.base.StepRun` carries them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruvon.providers.http import HttpClient
from ruvon.providers.secrets import SecretsProvider

__all__ = ["NO_SERVICES", "StepServices"]


@dataclass(frozen=True, slots=True)
class StepServices:
    """Optional collaborators of step kinds (``None``: the kind uses its default or refuses)."""

    http_client: HttpClient | None = None
    secrets: SecretsProvider | None = None
    starter: Any = None
    """What starts child and spawned workflows (the builder); see ``ruvon.steps.spawn``."""


NO_SERVICES = StepServices()
