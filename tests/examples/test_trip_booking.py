"""The trip-booking saga runs end to end on SQLite and PostgreSQL, and the saga example of
docs/guide.md runs as written (its files are cut out of the page; every print's comment is
what it prints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.conftest import run_example
from tests.support.doc_examples import run_doc_example


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


def test_the_saga_example_of_the_guide_runs(tmp_path: Path) -> None:
    example = run_doc_example("guide.md", "### Saga compensation", tmp_path, ends_at=("\n## ",))
    assert example.stdout == example.promised
