"""Test kit for your own workflows: :class:`TestHarness` runs them on in-memory providers."""

from ruvon.testing.harness import TestHarness, WorkflowTestHarness

__all__ = ["TestHarness", "WorkflowTestHarness"]
