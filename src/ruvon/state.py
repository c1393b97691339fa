"""Merging step results into the state and re-validating it: the only merge code in Ruvon."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ruvon.models import MergeStrategy

__all__ = ["StateModel", "dump_state", "merge_dicts", "merge_state", "new_state"]

logger = logging.getLogger("ruvon.state")

StateModel = type[BaseModel] | type[dict[str, Any]]


def new_state(model: StateModel, data: Mapping[str, Any] | None) -> Any:
    """Build the initial state; raises pydantic's ValidationError for invalid data."""
    if model is dict:
        return dict(data or {})
    return model.model_validate(dict(data or {}))  # type: ignore[union-attr]


def dump_state(state: Any) -> dict[str, Any]:
    """The JSON-ready form of the state that is stored."""
    if isinstance(state, BaseModel):
        return state.model_dump(mode="json")
    return copy.deepcopy(dict(state))


def merge_dicts(
    current: Mapping[str, Any], update: Mapping[str, Any], strategy: MergeStrategy
) -> dict[str, Any]:
    """``update`` merged into ``current`` with ``strategy`` (returns a new dict)."""
    if strategy is MergeStrategy.REPLACE:
        return dict(update)
    merged = dict(current)
    for key, value in update.items():
        if strategy is MergeStrategy.OVERWRITE_EXISTING and key not in current:
            continue
        if strategy is MergeStrategy.PRESERVE_EXISTING and current.get(key) is not None:
            continue
        old = merged.get(key)
        if (
            strategy is MergeStrategy.DEEP
            and isinstance(old, Mapping)
            and isinstance(value, Mapping)
        ):
            merged[key] = merge_dicts(old, value, strategy)
        elif strategy is MergeStrategy.APPEND and isinstance(old, list) and isinstance(value, list):
            merged[key] = [*old, *value]
        else:
            merged[key] = value
    return merged


def merge_state(
    state: Any,
    result: Mapping[str, Any],
    model: StateModel,
    strategy: MergeStrategy = MergeStrategy.SHALLOW,
) -> Any:
    """A new state: ``result`` merged into ``state``, validated against ``model``.

    Raises pydantic's ValidationError if the merged state is invalid; ``state`` is unchanged.
    Keys that are not fields of the model are dropped (unless the model allows extras).
    """
    if model is dict:
        return merge_dicts(state, result, strategy)
    if strategy is MergeStrategy.SHALLOW:
        # The current field values are already valid model instances: pydantic accepts them
        # as they are, so only the top level and the new values are validated.
        current: dict[str, Any] = dict(state.__dict__)
        extra = state.__pydantic_extra__
        if extra:
            current.update(extra)
        merged = {**current, **result}
    else:
        merged = merge_dicts(state.model_dump(), result, strategy)
    validated = model.model_validate(merged)  # type: ignore[union-attr]
    if logger.isEnabledFor(logging.DEBUG):
        dropped = set(result) - set(model.model_fields) - set(validated.__pydantic_extra__ or {})  # type: ignore[union-attr]
        if dropped:
            logger.debug("Dropped keys that are not fields of %s: %s", model.__name__, dropped)
    return validated
