"""Engine tests: real workflows through WorkflowBuilder and Workflow on every backend."""
