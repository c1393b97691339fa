"""The loan-application example: state models and step functions."""
