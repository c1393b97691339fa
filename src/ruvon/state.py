"""Merging step results into the state and re-validating it: the only merge code in Ruvon."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from ruvon.errors import StateValidationError, StepResultError
from ruvon.models import MergeStrategy
from ruvon.serialization import Encoded, dumps, jsonable, unserializable_path

__all__ = [
    "StateModel",
    "check_storable",
    "describe_errors",
    "dump_state",
    "encode_state",
    "merge_dicts",
    "merge_state",
    "new_state",
    "settle_state",
    "unmerged_keys",
]

logger = logging.getLogger("ruvon.state")

StateModel = type[BaseModel] | type[dict[str, Any]]


def describe_errors(exc: ValidationError) -> list[str]:
    """Pydantic's errors as ``field: reason (got value)``, one per problem."""
    described = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "state"
        got = f" (got {err['input']!r})" if "input" in err and err["type"] != "missing" else ""
        described.append(f"{where}: {err['msg']}{got}")
    return described


def new_state(
    model: StateModel, data: Mapping[str, Any] | None, workflow_type: str | None = None
) -> Any:
    """Build the initial state; :class:`StateValidationError` (naming the workflow type and
    each field) for invalid data."""
    if model is dict:
        return dict(data or {})
    try:
        return model.model_validate(dict(data or {}))  # type: ignore[union-attr]
    except ValidationError as exc:
        raise StateValidationError(
            describe_errors(exc), model=model.__name__, workflow_type=workflow_type
        ) from None


def dump_state(state: Any) -> dict[str, Any]:
    """The JSON form of the state that is stored (a new, independent dict)."""
    if isinstance(state, BaseModel):
        return state.model_dump(mode="json")
    return jsonable(dict(state))  # type: ignore[no-any-return]


def check_storable(step_name: str, result: Mapping[str, Any]) -> None:
    """Fail the step (:class:`StepResultError`, naming the key) if the codec cannot store its
    result."""
    try:
        dumps(result)
    except TypeError:
        path, reason = unserializable_path(result) or ("", "cannot be serialized")
        raise StepResultError(
            step_name, f"returned a value that cannot be stored at '{path}': {reason}", key=path
        ) from None


def encode_state(state: Any) -> Encoded:
    """The state as the JSON that is stored, encoded once."""
    if isinstance(state, BaseModel):
        return Encoded(state.__pydantic_serializer__.to_json(state))
    return Encoded(dumps(dict(state)))


def settle_state(state: Any, model: StateModel, step_name: str | None) -> tuple[Any, Encoded]:
    """Check the state a step leaves before it is committed; return it with its JSON form,
    encoded (what the commit stores).

    The fast path is the encoding the commit needs anyway, straight from Pydantic's serializer
    to JSON (no intermediate dict), with Pydantic's type checks as errors.
    A value of another type than its field's (assigned in place) takes the slow path: the
    whole state is validated again, so a coercible value is coerced and a wrong one fails the
    step with :class:`StateValidationError` naming the field. A value the codec cannot store
    fails it with :class:`StepResultError` naming the key.
    """
    if not isinstance(state, BaseModel):
        try:
            return state, Encoded(dumps(dict(state)))
        except TypeError:
            path, reason = unserializable_path(dict(state)) or ("", "cannot be serialized")
            raise StepResultError(
                step_name or "?",
                f"left a value in state.{path} that cannot be stored: {reason}",
                key=path,
            ) from None
    try:
        return state, Encoded(state.__pydantic_serializer__.to_json(state, warnings="error"))
    except PydanticSerializationError:
        pass
    state_model = type(state)
    raw = state.model_dump(warnings=False)
    try:
        state = state_model.model_validate(raw)
        return state, Encoded(state.__pydantic_serializer__.to_json(state, warnings="error"))
    except ValidationError as exc:
        raise StateValidationError(
            describe_errors(exc), model=state_model.__name__, step_name=step_name
        ) from None
    except PydanticSerializationError as exc:
        path, reason = unserializable_path(raw) or ("", str(exc))
        raise StepResultError(
            step_name or "?",
            f"left a value in state.{path} that cannot be stored: {reason}",
            key=path,
        ) from None


def unmerged_keys(result: Mapping[str, Any], model: StateModel) -> list[str]:
    """Keys of ``result`` that merging leaves out of the state: those the model lacks, when it
    ignores extra keys (Pydantic's default). Empty for dict states and ``extra='allow'``."""
    if model is dict:
        return []
    fields = model.__pydantic_fields__  # type: ignore[union-attr]  # model_fields, faster
    unknown = [key for key in result if key not in fields]
    extra = model.model_config.get("extra")  # type: ignore[union-attr]
    if not unknown or extra == "allow" or extra == "forbid":
        return []
    aliases = {
        name
        for info in fields.values()
        for name in (
            info.alias,
            info.validation_alias,
            *getattr(info.validation_alias, "choices", ()),
        )
        if isinstance(name, str)
    }
    return [key for key in unknown if key not in aliases]


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
