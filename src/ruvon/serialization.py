"""The one JSON codec of Ruvon (orjson): state, step results, audit data, compensation results
and every JSON column of every store go through :func:`dumps` and :func:`loads`.

It serializes what Pydantic serializes in JSON mode, the same way: ``Decimal`` as a string,
``date``/``datetime``/``time`` as ISO 8601, ``UUID`` as a string, ``Enum`` as its value,
models as their JSON dump, tuples and sets as lists, ``timedelta`` as an ISO duration. A value
it cannot serialize raises ``TypeError`` (orjson's ``JSONEncodeError``);
:func:`unserializable_path` tells where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from pydantic_core import PydanticSerializationError, to_jsonable_python

__all__ = [
    "Encoded",
    "deserialize",
    "dumps",
    "jsonable",
    "loads",
    "serialize",
    "unserializable_path",
]

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class Encoded:
    """A value already encoded as JSON (by this codec or by Pydantic's serializer, which writes
    the same JSON): wherever it is serialized again — alone or inside another value — its text
    is written as it is, without parsing and re-encoding it.

    The engine hands the state to ``commit_workflow`` in this form: it is dumped once, straight
    to JSON, by the model's serializer.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def decode(self) -> Any:
        """The value (a new, independent object)."""
        return orjson.loads(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encoded) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Encoded({self.data!r})"


def _default(value: Any) -> Any:
    """What orjson does not know natively: already encoded JSON, written as it is; Pydantic's
    JSON-mode conversion for the rest."""
    if type(value) is Encoded:
        return orjson.Fragment(value.data)
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}") from None


def dumps(value: Any) -> bytes:
    """Serialize to JSON bytes; ``TypeError`` for a value that cannot be serialized."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | bytearray | memoryview | str | Encoded) -> Any:
    """Parse JSON bytes or text (or take an :class:`Encoded` value's)."""
    if type(data) is Encoded:
        return orjson.loads(data.data)
    return orjson.loads(data)  # type: ignore[arg-type]


def jsonable(value: Any) -> Any:
    """``value`` as it comes back from a store: plain JSON types only."""
    return orjson.loads(dumps(value))


def serialize(value: Any) -> str:
    """Serialize to a JSON string. Keep this form, not :func:`dumps`'s bytes, for values that
    live long: orjson's bytes keep a buffer of at least 4 KB whatever their length."""
    if type(value) is Encoded:
        return value.data.decode()
    return dumps(value).decode()


def deserialize(data: bytes | str) -> Any:
    """Parse a JSON string or bytes."""
    return orjson.loads(data)


def unserializable_path(value: Any, path: str = "") -> tuple[str, str] | None:
    """Where in ``value`` the codec fails, as (dotted path, reason), or None if it does not.

    Used on the error path only: it serializes each branch again to find the culprit.
    """
    try:
        dumps(value)
    except TypeError as exc:
        children: list[tuple[str, Any]] = []
        if isinstance(value, Mapping):
            children = [(str(key), item) for key, item in value.items()]
        elif isinstance(value, (list, tuple)):
            children = [(str(index), item) for index, item in enumerate(value)]
        for name, item in children:
            found = unserializable_path(item, f"{path}.{name}" if path else name)
            if found is not None:
                return found
        return path, str(exc)
    return None
