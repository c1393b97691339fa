"""The expression contract: conditions in YAML (``routes``, ``while_condition``) are evaluated
by an :class:`ExpressionEvaluator` over the workflow's state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["ExpressionEvaluator"]


@runtime_checkable
class ExpressionEvaluator(Protocol):
    """Parses and evaluates condition expressions safely (never with ``eval``)."""

    def validate(self, expression: str) -> None:
        """Raise :class:`ruvon.errors.ExpressionError` if ``expression`` cannot be evaluated.

        Called when a definition is loaded, so a bad condition is reported before any run.
        """
        ...

    def evaluate(self, expression: str, context: Mapping[str, Any] | None = None) -> Any:
        """Evaluate ``expression`` with ``context`` (``{"state": ...}`` plus the state's fields)."""
        ...
