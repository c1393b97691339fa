"""Step-kind tests that need more than the engine fixtures (HTTP steps: a real local server)."""
