"""The HTTP example of docs/yaml.md runs as written: its files are cut out of the page (each
block whose first line names a file), the last Python block is run in a fresh directory, and it
prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "yaml.md"
BLOCK = re.compile(r"```(?:yaml|python)\n(.*?)```", re.DOTALL)
FILE_NAME = re.compile(r"# (\S+\.(?:yaml|py))\b")


def _section(text: str) -> str:
    start = text.index("### HTTP\n")
    end = text.index("\n### ", start + 1)
    return text[start:end]


def test_the_http_example_runs(tmp_path: Path) -> None:
    program = None
    for block in BLOCK.findall(_section(DOC.read_text(encoding="utf-8"))):
        named = FILE_NAME.match(block.splitlines()[0])
        if named is None:
            program = block
            continue
        path = tmp_path / named.group(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block, encoding="utf-8")
    assert program is not None
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
    promised = [
        line.split("#", 1)[1].strip()
        for line in program.splitlines()
        if line.strip().startswith("print(") and "#" in line
    ]
    assert done.stdout.splitlines() == promised
