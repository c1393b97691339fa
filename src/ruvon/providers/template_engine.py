"""The template contract: HTTP configs, ``initial_data_template`` and ``{{parameters.x}}`` in
workflow files are rendered by a :class:`TemplateEngine`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["TemplateEngine"]


@runtime_checkable
class TemplateEngine(Protocol):
    """Renders templates inside strings, dicts and lists (recursively)."""

    def render(self, template: Any, context: Mapping[str, Any]) -> Any:
        """Render ``template`` with ``context``.

        A string that is exactly one ``{{ expression }}`` renders to the expression's native value
        (a list stays a list); other strings render to strings; dicts and lists are rendered
        element by element; anything else is returned unchanged. Errors raise
        :class:`ruvon.errors.TemplateError`.
        """
        ...
