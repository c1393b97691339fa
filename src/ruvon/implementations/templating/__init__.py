"""templating implementations."""
