"""Workflows of the server tests, beside the order-approval example: Flaky (a step that fails
while a file exists, for retry) and Slow (a step that takes a while, for two requests driving
one run at once), and a custom router."""
