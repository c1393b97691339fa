"""The trip-booking example: a saga's models and step functions."""
