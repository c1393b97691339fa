"""W5 with ASYNC steps on Celery workers, next to the same workload in the caller's process.

``benchmarks/distributed.py`` is the entry point: ``deployment`` writes the ASYNC definition and
runs the worker processes, ``runs`` drives the workflows and reads the rows back, ``report``
prints the table.
"""
