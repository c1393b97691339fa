"""The SUB_WORKFLOW and FIRE_AND_FORGET examples of docs/yaml.md run as written: each section's
files are cut out of the page (each block whose first line names a file), its last block, the
program, is run in a fresh directory on the default store (a SQLite file there), and it prints
what its comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.doc_examples import DOCS, run_doc_example, section

DOC = DOCS / "yaml.md"


@pytest.mark.parametrize("kind", ["SUB_WORKFLOW", "FIRE_AND_FORGET"])
def test_the_example_runs_and_prints_what_it_promises(kind: str, tmp_path: Path) -> None:
    example = run_doc_example("yaml.md", f"### {kind}", tmp_path)
    assert "config/workflow_registry.yaml" in example.files
    assert (tmp_path / "ruvon.db").is_file()
    # Every print's comment is what it prints.
    assert len(example.promised) >= 5
    assert example.stdout == example.promised


def test_both_kinds_are_listed_as_running() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = section(text, "### Which kinds run today")
    for kind in ("SUB_WORKFLOW", "FIRE_AND_FORGET"):
        [row] = [line for line in table.splitlines() if line.startswith(f"| `{kind}`")]
        assert row.split("|")[2].strip() == "yes"
    assert "do not run yet" not in text
