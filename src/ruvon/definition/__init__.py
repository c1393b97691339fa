"""The YAML language: schema, loader and validation."""
