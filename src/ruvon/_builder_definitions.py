"""The builder's face of its definitions: the registry, the config directory, compiling types
and stored snapshots (with their injected steps), step overrides and validation. The work is
:class:`~ruvon.definition.source.DefinitionSource`'s; this mixin gives it the builder's API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruvon.definition.compiled import CompiledWorkflow
from ruvon.definition.loader import _IMPORT_CACHE as IMPORT_CACHE
from ruvon.definition.loader import clear_import_cache
from ruvon.definition.loader import import_callable as _import_callable
from ruvon.definition.source import DefinitionSource
from ruvon.errors import DefinitionIssue
from ruvon.injection import INJECTED_KEY, injected_snapshot
from ruvon.providers.expression_evaluator import ExpressionEvaluator
from ruvon.providers.persistence import WorkflowRecord

__all__ = ["DefinitionAccess"]


class DefinitionAccess:
    """``WorkflowBuilder``'s definition methods and properties."""

    _definitions: DefinitionSource
    _import_cache: dict[str, Any] = IMPORT_CACHE
    """Imported step functions and models, shared by all builders (see clear_import_cache)."""

    # -- the definitions' source -----------------------------------------------------------

    @property
    def registry(self) -> dict[str, dict[str, Any]]:
        """The registered types: ``{type: registry entry}``."""
        return self._definitions.registry

    @registry.setter
    def registry(self, value: dict[str, dict[str, Any]]) -> None:
        self._definitions.registry = value

    @property
    def registry_path(self) -> Path | None:
        """The registry file read, if any."""
        return self._definitions.registry_path

    @registry_path.setter
    def registry_path(self, value: Path | None) -> None:
        self._definitions.registry_path = value

    @property
    def config_dir(self) -> Path:
        """Where relative ``config_file`` paths are looked up and unregistered types found."""
        return self._definitions.config_dir

    @config_dir.setter
    def config_dir(self, value: Path) -> None:
        self._definitions.config_dir = value

    @property
    def expression_evaluator(self) -> ExpressionEvaluator:
        """The evaluator of the builder's workflows; it checks conditions when compiling."""
        return self._definitions.expression_evaluator

    @expression_evaluator.setter
    def expression_evaluator(self, value: ExpressionEvaluator) -> None:
        self._definitions.expression_evaluator = value

    def _compile(self, workflow_type: str) -> CompiledWorkflow:
        return self._definitions.compile(workflow_type)

    def _compile_snapshot(self, record: WorkflowRecord) -> CompiledWorkflow:
        """The run's definition: its snapshot, with the steps injected into it, if any."""
        snapshot = record.definition_snapshot
        injected = record.metadata.get(INJECTED_KEY)
        if injected:
            snapshot = injected_snapshot(snapshot, injected)
        return self._definitions.compile_snapshot(snapshot, record.id)

    def override_step(
        self,
        step_name: str,
        func: Callable[..., Any],
        *,
        workflow_type: str | None = None,
    ) -> None:
        """Run ``func`` instead of the function of every step called ``step_name`` (of
        ``workflow_type`` only, if given) in the workflows this builder creates or loads from
        now on. For tests: other builders, and the imported module, are untouched."""
        self._definitions.override_step(step_name, func, workflow_type=workflow_type)

    # -- definitions -----------------------------------------------------------------------

    def list_workflow_types(self) -> list[str]:
        """The registered workflow types."""
        return self._definitions.list_workflow_types()

    def get_workflow_config(self, workflow_type: str) -> dict[str, Any]:
        """The resolved configuration of a type: registry entry + file, ``${ENV}`` and
        ``{{parameters.x}}`` substituted, fully validated. Raises ValueError if unknown."""
        return dict(self._compile(workflow_type).snapshot)

    def get_state_model_class(self, workflow_type: str) -> type[Any]:
        """The state model class of a type."""
        return self._compile(workflow_type).state_model

    def get_current_version(self, workflow_type: str) -> str | None:
        """The ``workflow_version`` of the type's current file."""
        return self._compile(workflow_type).definition.workflow_version

    def validate(self, workflow_type: str | None = None) -> list[DefinitionIssue]:
        """Load and check one type (or every registered type); raise a DefinitionError that
        lists the problems of every file.

        Returns the warnings (definitions that load but look wrong, such as a branch falling
        through into another branch) of the types checked; they never fail loading.
        """
        return self._definitions.validate(workflow_type)

    def reload_workflow_type(
        self, workflow_type: str, yaml_content: str | None = None
    ) -> dict[str, Any]:
        """Forget the compiled definition (and imported functions); optionally replace the file's
        content with ``yaml_content``. Running workflows keep their snapshots."""
        self._definitions.reload(workflow_type, yaml_content)
        return self.get_workflow_config(workflow_type)

    @classmethod
    def _import_from_string(cls, path: str) -> Any:
        """Import ``pkg.module.attr`` (or ``pkg.module:attr``), cached for all builders."""
        try:
            return _import_callable(path)
        except ImportError as exc:
            raise ValueError(str(exc)) from exc

    @classmethod
    def clear_import_cache(cls) -> None:
        """Forget every imported step function and model."""
        clear_import_cache()
