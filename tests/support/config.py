"""A configuration directory in ``tmp_path``: a registry file plus one YAML file per workflow.

Tests write (and rewrite) workflow files through :class:`ConfigDir` and make builders that read
them, exactly like an application does with its ``config/`` directory.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import AuditEvent, PersistenceProvider

STEPS = "tests.support.order_steps"
"""The module holding the test step functions, as workflow files name it."""

STATE_MODEL = f"{STEPS}.OrderState"

REGISTRY_NAME = "workflow_registry.yaml"


class ConfigDir:
    """Writes workflow files and the registry that lists them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, str] = {}

    @property
    def registry_path(self) -> Path:
        return self.root / REGISTRY_NAME

    def write(self, workflow_type: str, text: str, *, file_name: str | None = None) -> Path:
        """Write (or overwrite) a workflow file and list it in the registry."""
        name = file_name or f"{workflow_type.lower()}.yaml"
        path = self.root / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        self.files[workflow_type] = name
        self._write_registry()
        return path

    def write_all(self, workflows: dict[str, str]) -> None:
        for workflow_type, text in workflows.items():
            self.write(workflow_type, text)

    def _write_registry(self) -> None:
        lines = ["workflows:"]
        for workflow_type, name in self.files.items():
            lines += [
                f"  - type: {workflow_type}",
                f"    config_file: {name}",
                f"    initial_state_model: {STATE_MODEL}",
            ]
        self.registry_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def builder(
        self, persistence: PersistenceProvider | None = None, **kwargs: Any
    ) -> WorkflowBuilder:
        """A new builder reading this directory's registry."""
        return WorkflowBuilder(self.registry_path, persistence_provider=persistence, **kwargs)


def workflow(
    workflow_type: str,
    steps: str,
    *,
    version: str = "1",
    header: str = "",
    state_model: str = STATE_MODEL,
) -> str:
    """A workflow file: the standard header (type, version, state model) and ``steps``.

    ``steps`` is the YAML list of steps, written at column 0; ``header`` adds top-level keys.
    """
    top = textwrap.dedent(header).strip()
    parts = [
        f"workflow_type: {workflow_type}",
        f'workflow_version: "{version}"',
        f"initial_state_model: {state_model}",
        *([top] if top else []),
        "steps:",
        textwrap.indent(textwrap.dedent(steps).strip(), "  "),
    ]
    return "\n".join(parts) + "\n"


async def audit_types(persistence: PersistenceProvider, workflow_id: str) -> list[str]:
    """The event types of a workflow's audit log, oldest first."""
    return [event.event_type for event in await audit_log(persistence, workflow_id)]


async def audit_log(persistence: PersistenceProvider, workflow_id: str) -> list[AuditEvent]:
    """A workflow's whole audit log, oldest first."""
    return await persistence.get_audit_log(workflow_id, limit=10_000)
