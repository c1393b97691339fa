"""execution implementations."""
