"""observability implementations."""
