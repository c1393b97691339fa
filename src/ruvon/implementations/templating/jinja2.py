"""The default :class:`~ruvon.providers.template_engine.TemplateEngine`: sandboxed Jinja2.

Templates run in an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`~jinja2.StrictUndefined`, so an unknown variable, a private attribute or a mutating call
is an error rather than an empty string. A string that is exactly one ``{{ expression }}``
renders to the expression's native value (``"{{ state.items }}"`` stays a list).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ruvon.errors import TemplateError

__all__ = ["Jinja2TemplateEngine"]

_Renderer = Callable[[Mapping[str, Any]], Any]

_CACHE_SIZE: Final = 1024
_MARKERS: Final = ("{{", "{%", "{#")
# Only a candidate: the parse in _compile decides whether it really is one expression.
_SINGLE_EXPRESSION: Final = re.compile(r"\s*\{\{[-+]?(.*?)[-+]?\}\}\s*", re.DOTALL)


def _is_blank(node: nodes.Node) -> bool:
    return isinstance(node, nodes.TemplateData) and not node.data.strip()


class Jinja2TemplateEngine:
    """Renders strings, dicts and lists with sandboxed Jinja2; errors raise :class:`TemplateError`.

    ``context`` is the original constructor argument: it is the default context, and a context
    passed to :meth:`render` is layered over it.
    """

    def __init__(self, context: Mapping[str, Any] | None = None) -> None:
        self._context: dict[str, Any] = dict(context or {})
        self._env = ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            # HTTP bodies and messages keep their text exactly as written.
            keep_trailing_newline=True,
        )
        self._cache: dict[tuple[str, bool], _Renderer] = {}

    def render(self, template: Any, context: Mapping[str, Any] | None = None) -> Any:
        """Render ``template``: strings (natively when exactly one ``{{ }}``), dicts and lists.

        Dict keys and values, and list and tuple items, are rendered recursively; anything else
        is returned unchanged.
        """
        return self._render(template, self._merged(context))

    def render_string_template(
        self, template: str, context: Mapping[str, Any] | None = None
    ) -> str:
        """Render ``template`` to a string, even when it is a single ``{{ expression }}``."""
        return str(self._render_string(template, self._merged(context), native=False))

    def _merged(self, context: Mapping[str, Any] | None) -> Mapping[str, Any]:
        if not self._context:
            return context or {}
        return {**self._context, **(context or {})}

    def _render(self, template: Any, context: Mapping[str, Any]) -> Any:
        if isinstance(template, str):
            return self._render_string(template, context, native=True)
        if isinstance(template, Mapping):
            return {
                self._render(key, context): self._render(value, context)
                for key, value in template.items()
            }
        if isinstance(template, (list, tuple)):
            return type(template)(self._render(item, context) for item in template)
        return template

    def _render_string(self, template: str, context: Mapping[str, Any], *, native: bool) -> Any:
        if not any(marker in template for marker in _MARKERS):
            return template
        try:
            return self._compiled(template, native)(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"Invalid template {template!r}: {exc.message} (line {exc.lineno})"
            ) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"Cannot render template {template!r}: {exc.message}") from None
        except Exception as exc:
            raise TemplateError(
                f"Cannot render template {template!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def _compiled(self, template: str, native: bool) -> _Renderer:
        key = (template, native)
        renderer = self._cache.get(key)
        if renderer is None:
            renderer = self._compile(template, native)
            if len(self._cache) >= _CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = renderer
        return renderer

    def _compile(self, template: str, native: bool) -> _Renderer:
        expression = self._single_expression(template) if native else None
        if expression is None:
            return self._env.from_string(template).render
        # undefined_to_none=False: StrictUndefined must fail, not quietly become None.
        compiled = self._env.compile_expression(expression, undefined_to_none=False)

        def evaluate(context: Mapping[str, Any]) -> Any:
            value = compiled(**context)
            if isinstance(value, jinja2.Undefined):
                # Raises the UndefinedError (or SecurityError) the undefined value carries.
                str(value)
            return value

        return evaluate

    def _single_expression(self, template: str) -> str | None:
        """The source of the one ``{{ expression }}`` that makes up ``template``, if it is one."""
        match = _SINGLE_EXPRESSION.fullmatch(template)
        if match is None:
            return None
        body = self._env.parse(template).body
        if len(body) != 1 or not isinstance(body[0], nodes.Output):
            return None
        parts = [node for node in body[0].nodes if not _is_blank(node)]
        if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
            return None
        return match.group(1)
