"""Documented import aliases (``ruvon.utils.serialization``)."""
