"""The trip-booking saga runs end to end on SQLite and PostgreSQL, and the saga example of
docs/guide.md runs as written (its files are cut out of the page; every print's comment is
what it prints)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.conftest import run_example

DOC = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
BLOCK = re.compile(r"```(?:yaml|python)\n(.*?)```", re.DOTALL)
FILE_NAME = re.compile(r"# (\S+\.(?:yaml|py))\b")


def _check(out: str) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("T-100 COMPLETED")
    assert "booked=FL-T-100,HT-T-100,CR-T-100 payment=PAY-T-100" in lines[0]
    assert lines[1].startswith("T-200 FAILED_ROLLED_BACK PaymentDeclined: card ending 0002")
    assert lines[1].endswith("cancelled=CR-T-200,HT-T-200,FL-T-200")
    assert lines[2].startswith("T-300 FAILED_ROLLED_BACK")
    assert lines[2].endswith("cancelled=CR-T-300,FL-T-300 still booked=HT-T-300")
    assert lines[3:7] == [
        "compensation log of T-300:",
        "  COMPENSATE        Rent_Car",
        "  COMPENSATE_FAILED Book_Hotel  ConnectionError: hotel booking API unreachable",
        "  COMPENSATE        Book_Flight",
    ]
    assert lines[7].endswith(
        "STEP_FAILED(Charge_Card) > COMPENSATION_STARTED > COMPENSATION_EXECUTED(Rent_Car) > "
        "COMPENSATION_FAILED(Book_Hotel) > COMPENSATION_EXECUTED(Book_Flight) > "
        "COMPENSATION_COMPLETED > WORKFLOW_FAILED(Charge_Card)"
    )


def test_runs_on_the_default_sqlite_file(tmp_path: Path) -> None:
    _check(run_example("trip_booking", tmp_path, {}))
    assert (tmp_path / "ruvon.db").is_file()


@pytest.mark.postgres
def test_runs_on_postgres(tmp_path: Path, postgres_schema_url: str) -> None:
    _check(run_example("trip_booking", tmp_path, {"RUVON_DATABASE_URL": postgres_schema_url}))
    assert not (tmp_path / "ruvon.db").exists()


def _section(text: str) -> str:
    start = text.index("### Saga compensation")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_saga_example_of_the_guide_runs(tmp_path: Path) -> None:
    blocks = BLOCK.findall(_section(DOC.read_text(encoding="utf-8")))
    program = None
    for block in blocks:
        named = FILE_NAME.match(block.splitlines()[0])
        if named is None:
            if "asyncio.run(main())" in block:
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
