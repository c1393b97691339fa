"""Running an example of the docs as written: the blocks of a section whose first line names a
file (``# config/x.yaml``, ``# shop.py``) are written to a fresh directory, the program (the
last other block that calls ``asyncio.run(``) runs there in a subprocess on the default store,
and every ``print(...)  # text`` of it promises the line it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DOCS", "DocExample", "run_doc_example", "section"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"```(?:yaml|python)\n(.*?)```", re.DOTALL)
_FILE_NAME = re.compile(r"# (\S+\.(?:yaml|py))\b")


def section(text: str, heading: str, *, ends_at: tuple[str, ...] = ("\n### ", "\n## ")) -> str:
    """The part of ``text`` from the line ``heading`` to the next line starting one of
    ``ends_at`` (or the end)."""
    start = text.index(f"\n{heading}\n")
    ends = [i for i in (text.find(end, start + 1) for end in ends_at) if i > 0]
    return text[start : min(ends) if ends else len(text)]


@dataclass(frozen=True)
class DocExample:
    """What ran: the program, the files written for it, what it printed and promised."""

    program: str
    files: list[str]
    stdout: list[str]
    promised: list[str]


def run_doc_example(
    doc: str,
    heading: str,
    workdir: Path,
    *,
    ends_at: tuple[str, ...] = ("\n### ", "\n## "),
) -> DocExample:
    """Run the example of ``docs/<doc>``'s section ``heading`` in ``workdir`` (without the
    caller's ``RUVON_*`` variables); it must exit 0."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    program = None
    written: list[str] = []
    for block in _BLOCK.findall(section(text, heading, ends_at=ends_at)):
        named = _FILE_NAME.match(block.splitlines()[0])
        if named is None:
            if "asyncio.run(" in block:
                program = block
            continue
        path = workdir / named.group(1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block, encoding="utf-8")
        written.append(named.group(1))
    assert program is not None, f"no program in {doc} {heading}"
    (workdir / "main.py").write_text(program, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUVON_")}
    done = subprocess.run(
        [sys.executable, "main.py"],
        cwd=workdir,
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
    return DocExample(program, written, done.stdout.splitlines(), promised)
