"""What the server checks in a request before the SDK sees it: values every store can keep.

JSON allows what the stores cannot hold alike: PostgreSQL refuses NUL characters in text and
JSONB (SQLite keeps them), the JSON codec refuses integers beyond 64 bits and lone surrogates,
and nesting deeper than the codec's limit. Such a value is a 422 naming where it is, instead of
a database error after the fact. Identifiers and names in paths and queries get the same text
check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ruvon_server.errors import ApiError

__all__ = ["MAX_DEPTH", "check_json", "check_text", "check_workflow_id"]

MAX_DEPTH = 64
"""The deepest nesting of objects and arrays accepted in a value."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

_WORKFLOW_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")
"""Run ids: UUIDs (what the server creates), or the ids applications choose through the SDK."""


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def _problem(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    if isinstance(value, str):
        problem = _text_problem(value)
        return (path, f"text {problem}") if problem else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            return path, "integer outside the 64-bit range"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "number is not finite")
    if depth >= MAX_DEPTH and isinstance(value, (Mapping, list)):
        return path, f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}"
            problem = _text_problem(str(key))
            if problem:
                return where, f"key {problem}"
            found = _problem(item, where, depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _problem(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None


def check_json(value: Any, name: str) -> None:
    """Raise a 422 ``unstorable_value`` if ``value`` (a request's JSON, field ``name``) holds
    something a store cannot keep."""
    found = _problem(value, name, 0)
    if found is not None:
        path, reason = found
        raise ApiError(
            422,
            "unstorable_value",
            f"{path}: {reason}; the value cannot be stored.",
            {"path": path, "reason": reason},
        )


def check_text(value: str | None, name: str, *, max_length: int = 200) -> str | None:
    """``value`` if it is text a store can use as a filter or key, else a 422 naming ``name``."""
    if value is None:
        return None
    problem = _text_problem(value)
    if problem is None and len(value) > max_length:
        problem = f"is longer than {max_length} characters"
    if problem is not None:
        raise ApiError(422, "invalid_request", f"{name} {problem}.", {"field": name})
    return value


def check_workflow_id(workflow_id: str) -> str:
    """A 400 ``invalid_workflow_id`` unless ``workflow_id`` looks like a run id."""
    if _WORKFLOW_ID.fullmatch(workflow_id) is None:
        raise ApiError(
            400,
            "invalid_workflow_id",
            f"'{workflow_id[:100]}' is not a workflow id (letters, digits and ._:@- only, "
            "at most 200 characters, e.g. a UUID).",
        )
    return workflow_id
