"""``ruvon``: the command line of the Ruvon workflow engine (``pip install 'ruvon-sdk[cli]'``).

Every command is a thin layer over the SDK's public API: one module per command group, the
shared plumbing (which database, which definitions, exit codes, output) in ``_context``.
"""

from ruvon import __version__

__all__ = ["__version__"]
