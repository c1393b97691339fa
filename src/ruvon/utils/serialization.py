"""Alias of :mod:`ruvon.serialization` at its documented import path."""

from ruvon.serialization import deserialize, serialize

__all__ = ["deserialize", "serialize"]
