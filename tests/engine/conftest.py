"""Fixtures of the engine tests: a provider from ``store``, a config directory with every test
workflow, and a builder reading it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruvon.builder import WorkflowBuilder
from ruvon.providers.persistence import PersistenceProvider
from tests.support.config import ConfigDir
from tests.support.workflows import WORKFLOWS


@pytest.fixture
def persistence(store: PersistenceProvider) -> PersistenceProvider:
    """The provider under test (every backend, through ``store``)."""
    return store


@pytest.fixture
def config(tmp_path: Path) -> ConfigDir:
    """A config directory holding every workflow of :data:`WORKFLOWS`."""
    directory = ConfigDir(tmp_path / "config")
    directory.write_all(WORKFLOWS)
    return directory


@pytest.fixture
def builder(config: ConfigDir, persistence: PersistenceProvider) -> WorkflowBuilder:
    """A builder reading ``config`` and committing to ``persistence``."""
    return config.builder(persistence)


@pytest.fixture
def fresh(config: ConfigDir, persistence: PersistenceProvider) -> WorkflowBuilder:
    """A second, independent builder on the same files and store: what reads back."""
    return config.builder(persistence)
