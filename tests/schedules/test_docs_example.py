"""The CRON_SCHEDULE example of docs/yaml.md runs as written: its files are cut out of the page
(each block whose first line names a file), the program is run in a fresh directory, and it
prints what its comments say."""

from __future__ import annotations

from pathlib import Path

from tests.support.doc_examples import run_doc_example


def test_the_cron_schedule_example_runs(tmp_path: Path) -> None:
    example = run_doc_example("yaml.md", "### CRON_SCHEDULE", tmp_path, ends_at=("\n### ",))
    # Every print's comment is what it prints.
    assert example.stdout == example.promised
