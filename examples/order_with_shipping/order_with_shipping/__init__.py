"""The order-with-shipping example: models and step functions."""
