"""The FastAPI app: :func:`create_app` (``ruvon_server.main:app`` is one, made from the
environment).

The lifespan builds the app's one :class:`~ruvon.WorkflowBuilder` — the registry from
``RUVON_CONFIG_DIR`` (else ``./config``), the store from ``RUVON_DATABASE_URL`` (else the
SDK's default SQLite file), initialized (migrated) before the first request — and closes both
at shutdown. Every request uses it (``app.state.builder``); a run is loaded per request and
driven under its lease, so concurrent requests need no lock of the server's own.

Routers: ``/health`` (open), then the API under ``/api/v1`` behind the authenticator
(:mod:`ruvon_server.auth`), then the custom routers of ``RUVON_CUSTOM_ROUTERS`` (behind it
too). ``GET /metrics`` (Prometheus, open like ``/health``) and ``GET /api/v1/events`` (Server-
Sent Events) are fed by observers given to the builder (``_observer``): a
``WorkflowEventStream``, a ``PrometheusObserver`` on the app's own registry, and
OpenTelemetry spans when ``RUVON_OTEL_ENABLED`` is set. The web page (:mod:`ruvon_server.ui`)
is served at ``/ui`` unless ``RUVON_UI_ENABLED=0``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from prometheus_client import CollectorRegistry

from ruvon import WorkflowBuilder, __version__
from ruvon.definition.loader import import_callable
from ruvon.implementations.execution.thread_pool import ThreadPoolExecutionProvider
from ruvon.implementations.observability.composite import CompositeObserver
from ruvon.implementations.observability.events import WorkflowEventStream
from ruvon.implementations.observability.prometheus import PrometheusObserver
from ruvon.providers.execution import ExecutionProvider
from ruvon.settings import persistence_from_url
from ruvon_server.auth import authenticator
from ruvon_server.errors import install_error_handlers
from ruvon_server.routes import (
    actions,
    definitions,
    health,
    live,
    metrics,
    observability,
    rewind,
    schedules,
    workflows,
)
from ruvon_server.settings import ConfigurationError, ServerSettings
from ruvon_server.ui import mount_ui

__all__ = ["API_PREFIX", "create_app", "load_router"]

logger = logging.getLogger("ruvon_server")

API_PREFIX = "/api/v1"

_API_ROUTERS = (
    definitions.router,  # before workflows: /workflows/types is not a run id
    workflows.router,
    actions.router,
    observability.router,
    metrics.router,
    schedules.router,
    live.events_router,
    rewind.router,
)


def _importable_cwd() -> None:
    """Step modules (and custom routers) live beside ``config/``: make them importable."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def load_router(path: str) -> APIRouter:
    """The APIRouter at ``module:attr`` (or ``module.attr``); ConfigurationError naming the
    path and the reason otherwise."""
    try:
        router: Any = import_callable(path)
    except ImportError as exc:
        raise ConfigurationError(f"RUVON_CUSTOM_ROUTERS: cannot include '{path}': {exc}") from exc
    if not isinstance(router, APIRouter):
        raise ConfigurationError(
            f"RUVON_CUSTOM_ROUTERS: '{path}' is a {type(router).__name__}, not a fastapi.APIRouter."
        )
    return router


def _observer(app: FastAPI) -> CompositeObserver:
    """What the builder reports to: the live event stream, Prometheus, and OpenTelemetry spans
    when ``RUVON_OTEL_ENABLED`` is set (the tracer provider is the application's: e.g. set up
    by ``opentelemetry-instrument``)."""
    observer = CompositeObserver(app.state.events, PrometheusObserver(app.state.registry))
    if os.environ.get("RUVON_OTEL_ENABLED", "").strip().lower() in ("1", "true", "yes"):
        try:
            from ruvon.implementations.observability.otel import OpenTelemetryObserver
        except ImportError as exc:
            raise ConfigurationError(f"RUVON_OTEL_ENABLED: {exc}") from exc
        observer.add(OpenTelemetryObserver())
    return observer


def _builder(settings: ServerSettings, observer: object) -> WorkflowBuilder:
    store = persistence_from_url(settings.database_url)
    execution: ExecutionProvider | None = None
    if settings.execution_provider == "thread_pool":
        execution = ThreadPoolExecutionProvider()
    elif settings.execution_provider == "celery":
        from ruvon.implementations.execution.celery import CeleryExecutionProvider

        execution = CeleryExecutionProvider(local=ThreadPoolExecutionProvider())
    return WorkflowBuilder(
        settings.registry_path,
        config_dir=settings.config_dir,
        persistence_provider=store,
        execution_provider=execution,
        observer=observer,
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServerSettings = app.state.settings
    builder = _builder(settings, _observer(app))
    store = builder.persistence_provider
    assert store is not None
    await store.initialize()  # migrate now: a database that cannot be opened stops start-up
    types = builder.list_workflow_types()
    logger.info(
        "Ruvon server %s: %d workflow type(s) from %s, auth %s, %s execution",
        __version__,
        len(types),
        builder.config_dir,
        settings.auth_provider,
        settings.execution_provider,
    )
    app.state.builder = builder
    try:
        yield
    finally:
        app.state.builder = None
        await builder.close()
        await store.close()


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """A new app. ``settings``: default from the environment
    (:meth:`ServerSettings.from_env`). Raises ConfigurationError for settings that cannot work
    (an unknown auth provider, a custom router that cannot be imported)."""
    settings = settings or ServerSettings.from_env()
    _importable_cwd()
    app = FastAPI(
        title="Ruvon",
        version=__version__,
        description="The REST API of the Ruvon workflow engine: start, drive and inspect "
        'workflow runs. Errors are {"error": {"type", "message", "details"}}.',
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.builder = None
    app.state.events = WorkflowEventStream()
    app.state.registry = CollectorRegistry()  # the app's own: several apps in one process
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(live.prometheus_router)
    guard = [Depends(authenticator(settings))]
    for router in _API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX, dependencies=guard)
    for path in settings.custom_routers:
        app.include_router(load_router(path), dependencies=guard)
    if settings.ui_enabled:
        mount_ui(app)
    return app
