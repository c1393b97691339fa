"""Helpers of the definition tests: where a fragment of a YAML file is, and the issues of an
error as comparable tuples."""

from __future__ import annotations

from pathlib import Path

from ruvon import DefinitionError, DefinitionIssue


def line_of(path: Path, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``path`` containing ``fragment``."""
    found = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fragment in line:
            found += 1
            if found == occurrence:
                return number
    raise AssertionError(f"{fragment!r} is not in {path}")


def find_issue(error: DefinitionError, fragment: str) -> DefinitionIssue:
    """The one issue whose message contains ``fragment``."""
    matches = [issue for issue in error.issues if fragment in issue.message]
    assert len(matches) == 1, (fragment, [issue.message for issue in error.issues])
    return matches[0]
