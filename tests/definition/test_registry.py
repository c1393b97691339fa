"""Registry files, discovery without a registry, and the substitution of ``${ENV}`` and
``{{parameters.x}}`` values."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruvon import DefinitionError, UnknownWorkflowTypeError, WorkflowStatus
from ruvon.builder import WorkflowBuilder
from ruvon.implementations.persistence.memory import MemoryPersistenceProvider
from tests.support.config import STATE_MODEL, ConfigDir, workflow
from tests.support.config import STEPS as S
from tests.support.definitions import find_issue, line_of

ONE_STEP = f"- name: Start\n  function: {S}.mark\n"


def write_registry(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "workflow_registry.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the registry file ----------------------------------------------------------------------


def test_an_unknown_top_level_key(tmp_path: Path) -> None:
    path = write_registry(tmp_path, "workflows: []\ncolour: blue\n")

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path)

    (issue,) = caught.value.issues
    assert (issue.message, issue.file, issue.line, issue.key) == (
        "unknown key 'colour'",
        str(path),
        2,
        "colour",
    )


def test_a_type_registered_twice(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path,
        "workflows:\n"
        "  - type: Order\n    config_file: a.yaml\n"
        "  - type: Order\n    config_file: b.yaml\n",
    )

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path)

    (issue,) = caught.value.issues
    assert issue.message == "workflow type 'Order' is registered twice"
    assert (issue.file, issue.line, issue.key) == (
        str(path),
        line_of(path, "type: Order", 2),
        "type",
    )


def test_registry_problems_of_several_types_are_reported_together(config: ConfigDir) -> None:
    config.write("Mismatch", workflow("Other", ONE_STEP))
    config.write("Odd", workflow("Odd", ONE_STEP))  # the last entry: gets an unknown key
    registry = config.registry_path
    registry.write_text(
        registry.read_text()
        + "    colour: blue\n"
        + f"  - type: Lost\n    config_file: lost.yaml\n    initial_state_model: {STATE_MODEL}\n",
        encoding="utf-8",
    )

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(registry).validate()

    error = caught.value
    assert len(error.issues) == 3
    mismatch = find_issue(error, "workflow_type 'Other' does not match the registry type")
    mismatch_file = config.root / "mismatch.yaml"
    assert (mismatch.file, mismatch.line, mismatch.key) == (
        str(mismatch_file),
        line_of(mismatch_file, "workflow_type:"),
        "workflow_type",
    )
    lost = find_issue(error, "config_file 'lost.yaml' not found")
    assert (lost.file, lost.line, lost.key) == (
        str(registry),
        line_of(registry, "config_file: lost.yaml"),
        "config_file",
    )
    # A key of a registry entry is reported in the registry, not in the workflow file.
    colour = find_issue(error, "unknown key 'colour'")
    assert (colour.file, colour.line, colour.key) == (
        str(registry),
        line_of(registry, "colour: blue"),
        "colour",
    )
    text = str(error)
    for issue in error.issues:
        assert f"{issue.file}:{issue.line}" in text


def test_an_inline_registry_entry_is_located_in_the_registry(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path,
        "workflows:\n"
        "  - type: Inline\n"
        f"    initial_state_model: {STATE_MODEL}\n"
        "    steps:\n"
        "      - name: Start\n"
        "        function: no_such_package.f\n",
    )

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path).validate()

    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.step, issue.key) == (
        str(path),
        line_of(path, "no_such_package"),
        "Start",
        "function",
    )


async def test_an_inline_registry_entry_runs(tmp_path: Path) -> None:
    path = write_registry(
        tmp_path,
        "workflows:\n"
        "  - type: Inline\n"
        f"    initial_state_model: {STATE_MODEL}\n"
        "    steps:\n"
        "      - name: Start\n"
        f"        function: {S}.mark\n",
    )
    builder = WorkflowBuilder(path, persistence_provider=MemoryPersistenceProvider())

    workflow_ = await builder.create_workflow("Inline", {"order_id": "R1"})

    assert await workflow_.run() is WorkflowStatus.COMPLETED
    assert workflow_.state.visited == ["Start"]


@pytest.mark.parametrize("key", ["initial_state_model_path", "initial_state_model"])
def test_a_bad_state_model_in_a_registry_entry_is_reported_in_the_registry(
    tmp_path: Path, key: str
) -> None:
    (tmp_path / "loan.yaml").write_text(
        f"workflow_type: Loan\nsteps:\n  - name: Start\n    function: {S}.mark\n",
        encoding="utf-8",
    )
    path = write_registry(
        tmp_path,
        f"workflows:\n  - type: Loan\n    config_file: loan.yaml\n    {key}: {S}.OrderStat\n",
    )

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path).validate("Loan")

    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.key) == (str(path), line_of(path, "OrderStat"), key)
    assert issue.message == (
        f"cannot import '{S}.OrderStat': '{S}' has no attribute 'OrderStat' "
        "(in the registry entry of type 'Loan')"
    )
    assert f"{path}:{issue.line}, key '{key}': cannot import" in str(caught.value)


def test_other_values_from_a_registry_entry_are_reported_in_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUVON_TEST_UNSET", raising=False)
    (tmp_path / "loan.yaml").write_text(
        f"workflow_type: Loan\nsteps:\n  - name: Start\n    function: {S}.mark\n",
        encoding="utf-8",
    )
    path = write_registry(
        tmp_path,
        "workflows:\n"
        "  - type: Loan\n"
        "    config_file: loan.yaml\n"
        f"    initial_state_model: {STATE_MODEL}\n"
        "    saga_mode: perhaps\n"
        "    description: ${RUVON_TEST_UNSET}\n"
        "    workflow_version: ${RUVON_TEST_UNSET}\n",
    )

    with pytest.raises(DefinitionError) as caught:
        WorkflowBuilder(path).validate("Loan")

    found = {(i.file, i.line, i.key) for i in caught.value.issues}
    assert found == {
        (str(path), line_of(path, "saga_mode"), "saga_mode"),
        (str(path), line_of(path, "workflow_version"), "workflow_version"),
    }
    assert all("(in the registry entry of type 'Loan')" in i.message for i in caught.value.issues)


def test_the_state_model_may_come_from_the_registry(config: ConfigDir) -> None:
    # The registry entry names the state model; the file does not.
    config.write("Plain", f"workflow_type: Plain\nsteps:\n  - name: A\n    function: {S}.mark\n")
    builder = config.builder()

    assert builder.get_state_model_class("Plain").__name__ == "OrderState"
    assert builder.list_workflow_types() == ["Plain"]


# -- discovery without a registry -------------------------------------------------------------


async def test_a_file_is_found_by_its_workflow_type(tmp_path: Path) -> None:
    (tmp_path / "zz_order.yml").write_text(workflow("Discovered", ONE_STEP), encoding="utf-8")
    (tmp_path / "broken.yaml").write_text("steps: [unclosed\n", encoding="utf-8")
    (tmp_path / "other.yaml").write_text(workflow("Other", ONE_STEP), encoding="utf-8")
    store = MemoryPersistenceProvider()
    builder = WorkflowBuilder(config_dir=tmp_path, persistence_provider=store)
    assert builder.registry_path is None
    assert builder.list_workflow_types() == []

    found = await builder.create_workflow("Discovered", {"order_id": "D1"})

    assert found.workflow_type == "Discovered"
    await found.run()
    loaded = await WorkflowBuilder(config_dir=tmp_path, persistence_provider=store).load_workflow(
        found.id
    )
    assert loaded.status is WorkflowStatus.COMPLETED
    with pytest.raises(ValueError, match=r"^Workflow type 'Missing' not found in registry\. "):
        await builder.create_workflow("Missing", {"order_id": "D2"})


@pytest.mark.parametrize("exists", [True, False], ids=["empty-dir", "missing-dir"])
async def test_without_a_registry_an_unknown_type_says_where_the_builder_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exists: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    config_dir = tmp_path / "workflows"
    if exists:
        config_dir.mkdir()
        (config_dir / "other.yaml").write_text(workflow("Other", ONE_STEP), encoding="utf-8")
    builder = WorkflowBuilder(
        config_dir=config_dir, persistence_provider=MemoryPersistenceProvider()
    )

    with pytest.raises(UnknownWorkflowTypeError) as caught:
        await builder.create_workflow("Missing", {"order_id": "D3"})

    registries = [config_dir / "workflow_registry.yaml", tmp_path / "config/workflow_registry.yaml"]
    tried = " and ".join(str(registry) for registry in registries)
    scanned = (
        f"no *.yaml or *.yml file in {config_dir} has 'workflow_type: Missing'"
        if exists
        else f"the config directory {config_dir} does not exist"
    )
    assert str(caught.value) == (
        "Workflow type 'Missing' not found in registry. "
        f"No registry file exists (looked for {tried}), and {scanned}."
    )
    assert caught.value.workflow_type == "Missing"


def test_with_a_registry_an_unknown_type_names_only_the_type(config: ConfigDir) -> None:
    config.write("Known", workflow("Known", ONE_STEP))

    with pytest.raises(UnknownWorkflowTypeError) as caught:
        config.builder().validate("Missing")

    assert str(caught.value) == "Workflow type 'Missing' not found in registry."


# -- substitution ---------------------------------------------------------------------------

SUBSTITUTED = workflow(
    "Subst",
    """
    - name: Start
      function: "{{parameters.module}}.mark"
      description: "${RUVON_TEST_DESCRIPTION:-no description}"
      retry_policy:
        max_attempts: "{{parameters.retry.attempts}}"
        delay_seconds: 0
    - name: Second
      function: ${RUVON_TEST_FUNCTION}
    """,
    header=f"""
    parameters:
      module: {S}
      retry:
        attempts: 4
    """,
)


async def test_env_and_parameters_are_substituted(
    config: ConfigDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUVON_TEST_DESCRIPTION", raising=False)
    monkeypatch.setenv("RUVON_TEST_FUNCTION", f"{S}.mark_shouting")
    config.write("Subst", SUBSTITUTED)
    builder = config.builder(MemoryPersistenceProvider())

    steps = builder.get_workflow_config("Subst")["steps"]

    assert steps[0]["function"] == f"{S}.mark"
    assert steps[0]["description"] == "no description"
    # A value that is exactly one parameter keeps the parameter's type.
    assert steps[0]["retry_policy"]["max_attempts"] == 4
    assert steps[1]["function"] == f"{S}.mark_shouting"
    created = await builder.create_workflow("Subst", {"order_id": "E1"})
    assert await created.run() is WorkflowStatus.COMPLETED
    assert created.state.visited == ["Start", "SECOND"]
    assert created.definition_snapshot["steps"][1]["function"] == f"{S}.mark_shouting"


def test_a_set_variable_wins_over_the_default(
    config: ConfigDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUVON_TEST_DESCRIPTION", "from the environment")
    monkeypatch.setenv("RUVON_TEST_FUNCTION", f"{S}.mark")
    config.write("Subst", SUBSTITUTED)

    steps = config.builder().get_workflow_config("Subst")["steps"]

    assert steps[0]["description"] == "from the environment"


def test_an_unset_variable_without_default(
    config: ConfigDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUVON_TEST_FUNCTION", raising=False)
    path = config.write("Subst", SUBSTITUTED)

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Subst")

    (issue,) = caught.value.issues
    assert issue.message == "environment variable 'RUVON_TEST_FUNCTION' is not set"
    assert (issue.file, issue.line) == (str(path), line_of(path, "${RUVON_TEST_FUNCTION}"))
    assert (issue.step, issue.key) == ("Second", "function")
    assert f"{path}:{issue.line}, step 'Second', key 'function': " in str(caught.value)


def test_an_unknown_parameter(config: ConfigDir, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUVON_TEST_FUNCTION", f"{S}.mark")
    path = config.write("Subst", SUBSTITUTED.replace("parameters.module", "parameters.nope"))

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Subst")

    (issue,) = caught.value.issues
    assert issue.message == "unknown parameter 'parameters.nope'"
    assert issue.line == line_of(path, "parameters.nope")


def test_an_unset_variable_is_reported_with_the_files_other_problems(
    config: ConfigDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUVON_TEST_FUNCTION", raising=False)
    broken = SUBSTITUTED + "  - name: Broken\n    function: no.such.module.fn\n    bogus: 1\n"
    path = config.write("Subst", broken)

    with pytest.raises(DefinitionError) as caught:
        config.builder().validate("Subst")

    messages = sorted(issue.message for issue in caught.value.issues)
    assert "environment variable 'RUVON_TEST_FUNCTION' is not set" in messages
    assert "unknown key 'bogus'" in messages
    assert all(issue.file == str(path) for issue in caught.value.issues)
    unset = next(i for i in caught.value.issues if "RUVON_TEST_FUNCTION" in i.message)
    assert unset.key == "function" and unset.step is not None
