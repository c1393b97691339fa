"""The JSON Schema of workflow files (``ruvon schema``): every example file is valid under it,
so are the other spellings the loader accepts, and an unknown key or step type is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ruvon.definition.json_schema import SCHEMA_DIALECT, workflow_json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKFLOW_FILES = sorted(
    path for path in EXAMPLES.glob("*/config/*.yaml") if path.name != "workflow_registry.yaml"
)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = workflow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [error.message for error in validator.iter_errors(document)]


def test_the_schema_names_its_dialect_and_describes_the_top_level_keys() -> None:
    schema = workflow_json_schema()

    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["title"] == "Ruvon workflow file"
    assert {"workflow_type", "steps", "initial_state_model", "saga_mode"} <= set(
        schema["properties"]
    )
    # The registry entry may name the state model instead.
    assert schema["required"] == ["workflow_type", "steps"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_every_example_workflow_file_is_valid(
    validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    assert problems(validator, yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_the_other_spellings_are_valid(validator: jsonschema.Draft202012Validator) -> None:
    document = {
        "workflow_type": "Spellings",
        "workflow_version": 2,
        "initial_state_model_path": "app.State",
        "saga_mode": True,
        "steps": [
            {"name": "a", "type": "compensatable", "function": "app.a"},
            {"name": "b", "type": "async", "func_path": "app.b", "merge_strategy": "deep"},
            {
                "name": "c",
                "type": "decision",
                "routes": [{"condition": "state.x", "next_step": "a"}, {"default": "b"}],
            },
            {
                "name": "d",
                "type": "CRON_SCHEDULER",
                "schedule": "0 * * * *",
                "target_workflow_type": "Other",
            },
            {
                "name": "e",
                "type": "PARALLEL",
                "tasks": [{"name": "t", "function": "app.t"}],
                "merge_conflict_behavior": "PREFER_OLD",
                "retry_policy": {"delay": 2},
            },
        ],
    }

    assert problems(validator, document) == []


def test_unknown_keys_and_step_types_and_missing_keys_are_invalid(
    validator: jsonschema.Draft202012Validator,
) -> None:
    def first_step(step: dict[str, Any]) -> list[str]:
        return problems(validator, {"workflow_type": "X", "steps": [step]})

    assert first_step({"name": "a", "function": "app.a", "colour": "red"})
    assert first_step({"name": "a", "type": "TELEPORT"})
    assert first_step({"name": "a", "type": "ASYNC"})  # no function under either spelling
    assert first_step({"name": "a", "type": "ASYNC", "function": "f", "func_path": "f"})
    assert problems(validator, {"workflow_type": "X"})  # no steps
