"""What the commands on workflow files (``validate``, ``run``) share: which definitions a file
stands for, and a line of output.

**Which definition a file is.** A registry file (``workflows:``) stands for all its types. A
workflow file is checked as the type that a registry lists it under (the
``workflow_registry.yaml`` beside it, else the config directory's), so the registry entry's
``initial_state_model`` and other keys count; a file that no registry lists is checked on its
own and must name its ``initial_state_model`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruvon import WorkflowBuilder
from ruvon.definition.loader import SourceDocument, read_yaml
from ruvon.definition.source import DefinitionSource
from ruvon.errors import DefinitionError, DefinitionIssue
from ruvon.implementations.expression_evaluator.simple import SimpleExpressionEvaluator
from ruvon_cli._context import EXIT_USAGE, config_dir, console, fail

__all__ = ["REGISTRY_NAME", "Target", "say", "target_of"]

REGISTRY_NAME = "workflow_registry.yaml"


def say(text: str) -> None:
    """One line of output, as it is (no markup or highlighting; long lines are not wrapped)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@dataclass
class Target:
    """The workflow types a file stands for, and where the builder finds them."""

    file: Path
    source: DefinitionSource
    types: list[str]
    registry: Path | None
    """The registry the types come from (None: the file is checked on its own)."""
    is_registry: bool = False
    notes: list[str] = field(default_factory=list)
    issues: list[DefinitionIssue] = field(default_factory=list)
    """Problems found before the types are checked."""

    def builder(self, **options: Any) -> WorkflowBuilder:
        """A builder reading the same definitions."""
        if self.registry is not None:
            return WorkflowBuilder(self.registry, **options)
        registry = {self.types[0]: {"config_file": self.file.name}}
        return WorkflowBuilder(registry, config_dir=self.file.parent, **options)


def _read(file: Path) -> SourceDocument:
    """The file's YAML; exit 2 when it cannot be read, DefinitionError for bad YAML."""
    if not file.exists():
        fail(f"No such file: {file}", EXIT_USAGE)
    if not file.is_file():
        fail(f"Not a file: {file}", EXIT_USAGE)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read {file}: {getattr(exc, 'strerror', None) or exc}", EXIT_USAGE)
    return read_yaml(text, str(file))


def _registries(file: Path) -> list[Path]:
    """The registry files that may list ``file``: beside it, then the config directory's."""
    found: list[Path] = []
    directory = config_dir()
    for candidate in (
        file.parent / REGISTRY_NAME,
        *([directory / REGISTRY_NAME] if directory else []),
    ):
        resolved = candidate.resolve()
        if (
            candidate.is_file()
            and resolved != file.resolve()
            and all(path.resolve() != resolved for path in found)
        ):
            found.append(candidate)
    return found


def target_of(file: Path) -> Target:
    """Which types ``file`` stands for; raises DefinitionError when none can be read."""
    document = _read(file)
    data = document.data
    evaluator = SimpleExpressionEvaluator()
    if isinstance(data, dict) and "workflows" in data and "steps" not in data:
        source = DefinitionSource(file, None, evaluator)
        return Target(file, source, source.list_workflow_types(), file, is_registry=True)
    notes: list[str] = []
    for registry in _registries(file):
        try:
            source = DefinitionSource(registry, None, evaluator)
        except DefinitionError as exc:
            count = len(exc.issues)
            notes.append(
                f"the registry {registry} has {count} problem{'s' if count != 1 else ''} "
                f"(see: ruvon validate {registry}); {file} was checked on its own"
            )
            continue
        workflow_type = source.type_of_file(file)
        if workflow_type is not None:
            return Target(file, source, [workflow_type], registry, notes=notes)
    declared = data.get("workflow_type") if isinstance(data, dict) else None
    issues = []
    if not isinstance(declared, str) or not declared:
        issues.append(
            document.lines.issue("missing required key 'workflow_type'", (), key="workflow_type")
        )
        declared = "Workflow"
    if not isinstance(data, dict) or not (
        data.get("initial_state_model") or data.get("initial_state_model_path")
    ):
        # Worth saying when the file lacks what a registry entry would give it.
        paths = _registries(file) or [file.parent / REGISTRY_NAME]
        looked = " or ".join(str(path) for path in paths)
        notes.append(f"no registry lists {file} (looked in {looked}); it was checked on its own")
    source = DefinitionSource({declared: {"config_file": file.name}}, file.parent, evaluator)
    return Target(file, source, [declared], None, notes=notes, issues=issues)
