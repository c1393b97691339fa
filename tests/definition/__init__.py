"""Definition tests: registry and workflow files rejected (or accepted) at load time."""
