"""persistence implementations."""
