"""What a PARALLEL task and a DAG stage cost the engine, beyond the step functions themselves.

``benchmarks/parallel.py`` is the entry point; ``tasks`` holds the step functions,
``workloads`` writes the workflow definitions and times them, ``report`` derives the per-task
and per-stage costs and prints them.
"""
