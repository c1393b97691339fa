"""The observer that observes nothing (the default)."""

from ruvon.providers.observer import NoOpObserver, NoopObserver, NoopWorkflowObserver

__all__ = ["NoOpObserver", "NoopObserver", "NoopWorkflowObserver"]
