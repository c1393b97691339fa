"""The request and response bodies of the API, as Pydantic models (so ``/openapi.json``
describes exactly what is sent and received). One module per concern."""
