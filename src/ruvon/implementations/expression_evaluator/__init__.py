"""expression_evaluator implementations."""
