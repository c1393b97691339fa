"""Fixtures of the definition tests: a config directory to write broken files into."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config import ConfigDir


@pytest.fixture
def config(tmp_path: Path) -> ConfigDir:
    """An empty config directory (a registry appears with the first file written)."""
    return ConfigDir(tmp_path / "config")
