"""Ruvon test suite."""
