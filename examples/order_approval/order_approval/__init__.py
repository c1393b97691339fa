"""The order-approval example: models and step functions."""
