"""Test-support code: step functions, state models and workflow files used by the tests."""
