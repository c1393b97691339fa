"""The SUB_WORKFLOW and FIRE_AND_FORGET examples of docs/yaml.md run as written: each section's
files are cut out of the page (each block whose first line names a file), its last block, the
program, is run in a fresh directory on the default store (a SQLite file there), and it prints
what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "yaml.md"
BLOCK = re.compile(r"```(?:yaml|python)\n(.*?)```", re.DOTALL)
FILE_NAME = re.compile(r"# (\S+\.(?:yaml|py))\b")


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    ends = [i for i in (text.find("\n### ", start + 1), text.find("\n## ", start + 1)) if i > 0]
    return text[start : min(ends)]


@pytest.mark.parametrize("kind", ["SUB_WORKFLOW", "FIRE_AND_FORGET"])
def test_the_example_runs_and_prints_what_it_promises(kind: str, tmp_path: Path) -> None:
    blocks = BLOCK.findall(_section(DOC.read_text(encoding="utf-8"), f"### {kind}"))
    *files, program = blocks
    assert FILE_NAME.match(program.splitlines()[0]) is None, "the last block is the program"
    written = []
    for block in files:
        named = FILE_NAME.match(block.splitlines()[0])
        if named is None:  # a snippet, not part of the example
            continue
        path = tmp_path / named.group(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block, encoding="utf-8")
        written.append(named.group(1))
    assert "config/workflow_registry.yaml" in written
    (tmp_path / "main.py").write_text(program, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUVON_")}
    done = subprocess.run(
        [sys.executable, "main.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ruvon.db").is_file()
    # Every print's comment is what it prints.
    promised = [
        line.split("#", 1)[1].strip()
        for line in program.splitlines()
        if line.strip().startswith("print(") and "#" in line
    ]
    assert len(promised) >= 5
    assert done.stdout.splitlines() == promised


def test_both_kinds_are_listed_as_running() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = _section(text, "### Which kinds run today")
    for kind in ("SUB_WORKFLOW", "FIRE_AND_FORGET"):
        [row] = [line for line in table.splitlines() if line.startswith(f"| `{kind}`")]
        assert row.split("|")[2].strip() == "yes"
    assert "do not run yet" not in text
