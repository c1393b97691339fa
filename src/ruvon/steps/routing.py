"""Choosing the next step from ``routes``: the first condition that holds wins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ruvon.definition.schema import Route
from ruvon.providers.expression_evaluator import ExpressionEvaluator

__all__ = ["choose_route", "expression_context"]


def expression_context(state: Any) -> dict[str, Any]:
    """The names a condition can use: ``state`` and, as a shortcut, each of its fields."""
    fields = dict(state) if isinstance(state, dict) else dict(state.__dict__)
    fields["state"] = state
    return fields


def choose_route(routes: Sequence[Route], state: Any, evaluator: ExpressionEvaluator) -> str | None:
    """The destination of the first route whose condition holds (or the default), else None."""
    if not routes:
        return None
    context = expression_context(state)
    for route in routes:
        if route.default is not None:
            return route.default
        if route.condition is not None and bool(evaluator.evaluate(route.condition, context)):
            return route.destination
    return None
