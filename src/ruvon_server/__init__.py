"""``ruvon_server``: the REST server of the Ruvon workflow engine (``pip install
'ruvon-sdk[server]'``), a FastAPI app over the SDK's public API.

Run it with ``ruvon server`` or ``uvicorn ruvon_server.main:app``; build your own instance with
:func:`ruvon_server.app.create_app`. Configuration comes from the environment
(:class:`ruvon_server.settings.ServerSettings`); see docs/server.md.
"""

from ruvon import __version__

__all__ = ["__version__"]
