"""Secrets provider implementations (templates' ``secrets``)."""
