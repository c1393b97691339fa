"""Several observers as one: the engine takes one observer, a deployment often wants several
(logs, traces, metrics, a live event stream)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["CompositeObserver"]

logger = logging.getLogger("ruvon.observer")


def _call_args(method: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``method`` accepts, as the engine passes them to one observer."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return kwargs
    names = {p.name for p in params}
    return {key: value for key, value in kwargs.items() if key in names}


class CompositeObserver:
    """Passes every hook to each of ``observers`` in order, with the arguments each accepts
    (like the engine does for one). One observer that raises is logged and skipped; the
    others still hear the event. ``initialize``/``close`` go to every observer that has them.

    ``CompositeObserver(LoggingObserver(), OpenTelemetryObserver(), events)``
    """

    def __init__(self, *observers: object) -> None:
        self.observers: tuple[object, ...] = tuple(o for o in observers if o is not None)

    def add(self, observer: object) -> None:
        """One more observer (before the builder starts using this one)."""
        self.observers = (*self.observers, observer)

    async def initialize(self) -> None:
        await self._each("initialize", {})

    async def close(self) -> None:
        await self._each("close", {})

    def __getattr__(self, hook: str) -> Any:
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        if not any(callable(getattr(o, hook, None)) for o in self.observers):
            raise AttributeError(hook)  # no observer has it: the engine skips the hook

        async def forward(**kwargs: Any) -> None:
            await self._each(hook, kwargs)

        return forward

    async def _each(self, hook: str, kwargs: dict[str, Any]) -> None:
        for observer in self._with(hook):
            method = getattr(observer, hook)
            try:
                outcome = method(**_call_args(method, kwargs))
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("Observer %s.%s failed", type(observer).__name__, hook)

    def _with(self, hook: str) -> Iterable[object]:
        return [o for o in self.observers if callable(getattr(o, hook, None))]
