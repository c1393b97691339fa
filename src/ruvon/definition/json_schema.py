"""The JSON Schema of workflow files, for editors (VS Code's ``yaml.schemas``, JetBrains) and
for tools: generated from the pydantic models of :mod:`ruvon.definition.schema`, then widened
to accept what the loader accepts:

- ``initial_state_model`` is not required (it may be in the registry entry instead);
- the other spellings of keys (``saga_mode``, ``func_path``, ``next_step``, ``delay`` …) are
  properties too, and a required key may be given under any of its spellings;
- step ``type`` values and merge settings may be lower-case, and the older names
  ``COMPENSATABLE``, ``CRON_SCHEDULER`` and ``PREFER_OLD`` are accepted;
- ``workflow_version`` may be a number.

Not expressed: ``{{parameters.x}}`` and ``${ENV}`` in a key whose value is not a string (the
loader substitutes them before validating), and the checks across steps (``ruvon validate``).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import AliasChoices, BaseModel

from ruvon.definition import schema

__all__ = ["SCHEMA_DIALECT", "workflow_json_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of :func:`workflow_json_schema` (pydantic writes 2020-12)."""

_TYPE_ALIASES = {"STANDARD": ["COMPENSATABLE"], "CRON_SCHEDULE": ["CRON_SCHEDULER"]}
_ENUM_ALIASES = {"PREFER_EXISTING": ["PREFER_OLD"]}


def workflow_json_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow file (a new copy on each call)."""
    return copy.deepcopy(_schema())


@functools.cache
def _schema() -> dict[str, Any]:
    document = schema.WorkflowDefinition.model_json_schema()
    definitions: dict[str, Any] = document.get("$defs", {})
    # Before the aliases: neither spelling is required (the registry entry may name it).
    document["required"] = [key for key in document["required"] if key != "initial_state_model"]
    _add_aliases(schema.WorkflowDefinition, document)
    for title, definition in definitions.items():
        model = getattr(schema, title, None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            _add_aliases(model, definition)
        if "enum" in definition:
            definition["enum"] = _spellings(definition["enum"], _ENUM_ALIASES)
        kind = definition.get("properties", {}).get("type", {})
        if "const" in kind:
            kind["enum"] = _spellings([kind.pop("const")], _TYPE_ALIASES)
    document["properties"]["workflow_version"] = {
        "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}],
        "default": None,
        "title": "Workflow Version",
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Ruvon workflow file",
        **{key: value for key, value in document.items() if key != "title"},
    }


def _spellings(values: list[Any], aliases: dict[str, list[str]]) -> list[Any]:
    """Each value, its older names, and their lower-case forms."""
    names: list[Any] = []
    for value in values:
        for name in [value, *aliases.get(str(value), [])]:
            names.append(name)
            if isinstance(name, str) and name.lower() != name:
                names.append(name.lower())
    return list(dict.fromkeys(names))


def _add_aliases(model: type[BaseModel], definition: dict[str, Any]) -> None:
    """Add the other spellings of ``model``'s keys to its schema ``definition``."""
    properties: dict[str, Any] = definition.get("properties", {})
    required: list[str] = definition.get("required", [])
    either: list[dict[str, Any]] = []
    for field_name, info in model.model_fields.items():
        choices = info.validation_alias
        if not isinstance(choices, AliasChoices):
            continue
        names = [name for name in choices.choices if isinstance(name, str)]
        primary = names[0] if names else field_name
        if primary not in properties:
            continue
        for other in names[1:]:
            properties[other] = {
                **properties[primary],
                "description": f"Another name of '{primary}'.",
            }
        if primary in required and len(names) > 1:
            required.remove(primary)
            either.append({"oneOf": [{"required": [name]} for name in names]})
    if either:
        definition["allOf"] = [*definition.get("allOf", []), *either]
    if "required" in definition and not required:
        del definition["required"]
