"""The W5 reference workload (DESIGN.md §6) and its harness.

Five sequential STANDARD steps with trivial bodies, a ~5 KB order as state, every step committed
durably, 100 workflows in flight. ``benchmarks/w5.py`` is the entry point.
"""
