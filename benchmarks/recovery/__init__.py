"""The crash-recovery benchmark: a worker process is killed with every workflow in the middle of
a step, and the zombie scanner and a worker bring them all to COMPLETED.

``benchmarks/recovery.py`` is the entry point; ``steps`` holds the workflow's step functions
(each writes its effect to a file), ``doomed`` is the process that gets killed, ``measure`` kills
it, recovers and checks every workflow, ``report`` prints the table.
"""
