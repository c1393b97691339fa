"""``ruvon config ...`` (CLI-01..06), and the configured database and defaults as the workflow
commands use them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Cli, Result

ORDER = {
    "order_id": "C-1",
    "customer": "ACME",
    "items": [{"sku": "X", "quantity": 1, "unit_price": 10}],
}


@pytest.fixture
def tool(project: Path, tmp_path: Path) -> Cli:
    """The CLI with its own config file and no database (the ``config`` group needs none, so
    these tests need not run once per database like the ``cli`` fixture's)."""
    env = {
        **os.environ,
        "RUVON_CONFIG_PATH": str(tmp_path / "cli-config.yaml"),
        "NO_COLOR": "1",
        "COLUMNS": "200",
    }
    for name in ("RUVON_DATABASE_URL", "RUVON_DB_URL", "RUVON_CONFIG_DIR"):
        env.pop(name, None)
    return Cli(project, "", env)


def ok(result: Result) -> Result:
    assert result.code == 0, result.err
    return result


def config_file(cli: Cli) -> Path:
    return Path(cli.env["RUVON_CONFIG_PATH"])


def test_path_prints_the_config_file(tool: Cli) -> None:
    assert ok(tool("config", "path", db=False)).out.strip() == str(config_file(tool))


def test_show_json_gives_the_defaults_before_anything_is_set(tool: Cli) -> None:
    shown = ok(tool("config", "show", "--json", db=False)).json()

    assert shown == {
        "path": str(config_file(tool)),
        "persistence": {},
        "execution": {},
        "defaults": {"auto_execute": False, "interactive": False, "json_output": False},
    }
    assert not config_file(tool).exists()  # showing writes nothing


def test_set_persistence_sqlite_stores_the_absolute_path(tool: Cli) -> None:
    out = ok(
        tool("config", "set-persistence", "--provider", "sqlite", "--db-path", "x.db", db=False)
    )

    assert "Persistence provider set to: sqlite" in out.out
    shown = ok(tool("config", "show", "--json", db=False)).json()
    assert shown["persistence"] == {"provider": "sqlite", "db_path": str(tool.cwd / "x.db")}
    stored = yaml.safe_load(config_file(tool).read_text())
    assert stored["persistence"]["provider"] == "sqlite"


def test_set_default_and_reset(tool: Cli) -> None:
    assert (
        "json_output = True"
        in ok(tool("config", "set-default", "json_output", "true", db=False)).out
    )
    ok(tool("config", "set-default", "auto_execute", "yes", db=False))

    defaults = ok(tool("config", "show", "--json", db=False)).json()["defaults"]
    assert defaults == {"auto_execute": True, "interactive": False, "json_output": True}
    text = ok(tool("config", "show", db=False)).out
    assert "json_output: true" in text

    assert "Configuration reset." in ok(tool("config", "reset", "--yes", db=False)).out
    assert not config_file(tool).exists()
    defaults = ok(tool("config", "show", "--json", db=False)).json()["defaults"]
    assert defaults["json_output"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set-persistence", "--provider", "redis"], "Unknown persistence provider 'redis'"),
        (["set-persistence", "--provider", "postgres"], "--db-url is required for postgres"),
        (["set-execution", "--provider", "celery"], "Unknown execution provider 'celery'"),
        (["set-default", "colour", "true"], "Unknown default 'colour'"),
        (["set-default", "json_output", "maybe"], "'maybe' is not true or false"),
    ],
)
def test_bad_values_are_exit_2_and_change_nothing(tool: Cli, args: list[str], message: str) -> None:
    result = tool("config", *args, db=False)

    assert result.code == 2
    assert result.err.startswith(f"Error: {message}")
    assert not config_file(tool).exists()


def test_an_invalid_config_file_is_reported_with_its_line(tool: Cli) -> None:
    config_file(tool).write_text("persistence:\n  provider: [sqlite\n")

    result = tool("config", "show", db=False)

    assert result.code == 2
    assert "is not valid YAML (line" in result.err


# -- the configuration as the workflow commands see it ------------------------------------


def configure(cli: Cli) -> None:
    """Point the config file at the test's database (SQLite file or PostgreSQL URL)."""
    if cli.db.startswith("sqlite:///"):
        args = ["--provider", "sqlite", "--db-path", cli.db.removeprefix("sqlite:///")]
    else:
        args = ["--provider", "postgres", "--db-url", cli.db]
    ok(cli("config", "set-persistence", *args, db=False))


def test_list_without_db_uses_the_configured_database(cli: Cli) -> None:
    started = ok(cli("start", "OrderApproval", "--data", json.dumps(ORDER), "--json")).json()
    # Before: the default database (./ruvon.db in the project) has no workflows.
    assert ok(cli("list", "--json", db=False)).json() == []

    configure(cli)

    listed = ok(cli("list", "--json", db=False)).json()
    assert [w["id"] for w in listed] == [started["id"]]
    assert ok(cli("show", started["id"], "--json", db=False)).json()["status"] == "COMPLETED"


def test_the_json_output_default_applies_to_the_workflow_commands(cli: Cli) -> None:
    ok(cli("start", "OrderApproval", "--data", json.dumps(ORDER)))
    ok(cli("config", "set-default", "json_output", "true", db=False))

    listed = ok(cli("list")).json()  # no --json: JSON all the same
    table = ok(cli("list", "--no-json")).out

    assert len(listed) == 1
    assert "Total: 1 workflow(s)" in table
