"""Implementations of the provider contracts. Chosen by the builder and the entry points."""
