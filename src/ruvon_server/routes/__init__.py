"""The API's routers, one module per concern; :func:`ruvon_server.app.create_app` includes
them (all but ``health`` under ``/api/v1``, behind the authenticator)."""
