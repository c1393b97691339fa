"""The browser tests' own workflow, beside the server tests' project: Batch, a parent run whose
child is an OrderApproval (for the parent and children links of the run page)."""
