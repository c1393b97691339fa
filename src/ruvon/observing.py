"""Calling observer hooks safely: only hooks an observer has, with only the keyword arguments
each hook accepts, and never letting an observer's failure reach the workflow."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from ruvon.providers.observer import NoopObserver

__all__ = ["ObserverHub"]

logger = logging.getLogger("ruvon.observer")

_ACCEPTS: dict[tuple[type, str], tuple[bool, frozenset[str]] | None] = {}


def _accepted(observer: object, hook: str) -> tuple[bool, frozenset[str]] | None:
    key = (type(observer), hook)
    if key not in _ACCEPTS:
        method = getattr(observer, hook, None)
        if method is None or not callable(method):
            _ACCEPTS[key] = None
        else:
            try:
                params = inspect.signature(method).parameters.values()
            except (TypeError, ValueError):
                _ACCEPTS[key] = (True, frozenset())
            else:
                any_kw = any(p.kind is p.VAR_KEYWORD for p in params)
                _ACCEPTS[key] = (any_kw, frozenset(p.name for p in params))
    return _ACCEPTS[key]


class ObserverHub:
    """Dispatches engine events to one observer (use a composite observer for several)."""

    __slots__ = ("_observer", "enabled")

    def __init__(self, observer: object | None) -> None:
        self._observer = observer
        # The default observer does nothing: skip building arguments for it.
        self.enabled = observer is not None and type(observer) is not NoopObserver

    async def emit(self, hook: str, **kwargs: Any) -> None:
        """Call ``observer.<hook>(**kwargs)`` with the arguments it accepts; log failures."""
        if not self.enabled:
            return
        accepted = _accepted(self._observer, hook)
        if accepted is None:
            return
        any_kw, names = accepted
        args = kwargs if any_kw else {k: v for k, v in kwargs.items() if k in names}
        try:
            outcome = getattr(self._observer, hook)(**args)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("Observer %s.%s failed", type(self._observer).__name__, hook)
