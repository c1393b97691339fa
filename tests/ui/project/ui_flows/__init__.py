"""The browser tests' own workflows, beside the server tests' project: Batch, a parent run whose
child is an OrderApproval (for the run page's parent and children links), and Report, steps with
dependencies after a PARALLEL step (for the layered graph)."""
