"""The fields of a step's input, read from the JSON Schema of its ``input_model``
(``Workflow.input_schema``): listed in hints, and asked for one by one by
``ruvon interactive run``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click
import typer

from ruvon_cli._context import console

__all__ = ["InputField", "ask_fields", "ask_json", "describe", "input_fields"]

_MISSING: Any = object()


@dataclass(frozen=True)
class InputField:
    """One property of an input model's schema."""

    name: str
    kind: str
    """``string``, ``integer``, ``number``, ``boolean``, or ``json`` (arrays, objects and
    anything else, typed as JSON)."""
    required: bool
    choices: tuple[Any, ...] = ()
    default: Any = _MISSING
    description: str | None = None

    @property
    def label(self) -> str:
        """``name (type, required)`` as hints and prompts show it."""
        kind = "|".join(str(c) for c in self.choices) if self.choices else self.kind
        notes = [kind, "required" if self.required else "optional"]
        if self.default is not _MISSING and self.default is not None:
            notes.append(f"default {json.dumps(self.default)}")
        return f"{self.name} ({', '.join(notes)})"


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (enums and nested models live in ``$defs``)."""
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _field(
    name: str, node: Mapping[str, Any], required: bool, defs: Mapping[str, Any]
) -> InputField:
    node = _resolve(node, defs)
    for key in ("anyOf", "allOf"):
        options = node.get(key)
        if isinstance(options, list):
            # Optional[X] is anyOf [X, null]; a defaulted reference may be allOf [X].
            real = [_resolve(o, defs) for o in options if o.get("type") != "null"]
            if len(real) == 1:
                node = {**real[0], **{k: v for k, v in node.items() if k != key}}
    enum = node.get("enum")
    kind = node.get("type")
    if kind not in ("string", "integer", "number", "boolean"):
        kind = "string" if enum and all(isinstance(v, str) for v in enum) else "json"
    description = node.get("description")
    return InputField(
        name=name,
        kind=str(kind),
        required=required,
        choices=tuple(enum) if isinstance(enum, list) else (),
        default=node.get("default", _MISSING),
        description=description if isinstance(description, str) else None,
    )


def input_fields(schema: Mapping[str, Any]) -> list[InputField]:
    """The top-level fields of an object schema, in declaration order."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    defs = schema.get("$defs") or {}
    return [_field(name, node, name in required, defs) for name, node in properties.items()]


def describe(schema: Mapping[str, Any]) -> str:
    """The fields as one line: ``approved (boolean, required), comment (string, optional)``."""
    return ", ".join(field.label for field in input_fields(schema))


def _note(text: str) -> None:
    console.print(text, markup=False, soft_wrap=True)


def _convert(field: InputField, text: str) -> Any:
    """The value typed for ``field``; ``click.BadParameter``/``ValueError`` if it is not one."""
    if field.choices:
        for choice in field.choices:
            if text == str(choice):
                return choice
        raise click.BadParameter(f"choose one of {', '.join(str(c) for c in field.choices)}")
    if field.kind == "boolean":
        return click.BOOL.convert(text, None, None)
    if field.kind == "integer":
        return click.INT.convert(text, None, None)
    if field.kind == "number":
        return click.FLOAT.convert(text, None, None)
    if field.kind == "string":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc.msg})") from None


def _ask(field: InputField) -> Any:
    """Prompt until the answer converts; ``_MISSING`` for an optional field left empty."""
    while True:
        if field.description:
            _note(f"  {field.description}")
        if field.required:
            text = typer.prompt(field.label)
        else:
            text = typer.prompt(field.label, default="", show_default=False)
            if text == "":
                return _MISSING
        try:
            return _convert(field, text)
        except (click.BadParameter, ValueError) as exc:
            message = exc.message if isinstance(exc, click.BadParameter) else str(exc)
            _note(f"  Invalid {field.name}: {message}")


def ask_fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Ask for each field of ``schema``; optional fields left empty are left out (the model's
    default applies)."""
    answers: dict[str, Any] = {}
    for field in input_fields(schema):
        value = _ask(field)
        if value is not _MISSING:
            answers[field.name] = value
    return answers


def ask_json(step_name: str | None) -> dict[str, Any]:
    """Ask for a step's whole input as one JSON object (a step without an input model)."""
    while True:
        text = typer.prompt(
            f"Input for {step_name} as a JSON object (empty for none)",
            default="",
            show_default=False,
        )
        if not text.strip():
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            _note(f"  Not valid JSON: {exc.msg}")
            continue
        if isinstance(value, dict):
            return value
        _note("  The input must be a JSON object.")
