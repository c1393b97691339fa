"""The order-fulfillment example: state models and step functions."""
