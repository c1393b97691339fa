"""``python -m ruvon_cli``: the same as the ``ruvon`` command."""

from ruvon_cli.main import main

main()
