"""One JSON codec for state and records (orjson)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["deserialize", "dumps", "loads", "serialize"]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Serialize to JSON bytes (datetimes, UUIDs, enums, pydantic models supported)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON bytes or text."""
    return orjson.loads(data)


def serialize(value: Any) -> str:
    """Serialize to a JSON string."""
    return dumps(value).decode()


def deserialize(data: bytes | str) -> Any:
    """Parse a JSON string or bytes."""
    return orjson.loads(data)
