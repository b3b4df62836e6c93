"""The FastAPI application: routers, error envelope, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatd import __version__
from chatd.api import errors, metrics, openapi
from chatd.api.boundary import BoundaryMiddleware
from chatd.api.middleware import RequestLimitsMiddleware
from chatd.api.routes import (
    chat_list,
    chats,
    files,
    messages,
    models,
    organizations,
    providers,
    streams,
    titles,
    usage_limits,
    users,
)
from chatd.engine.worker import Worker
from chatd.events.hub import EventHub
from chatd.provider_bootstrap import bootstrap_providers
from chatd.settings import Settings
from chatd.store import users as user_queries
from chatd.store.db import Database


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """Build the app. ``db`` is owned by the caller when given (tests share one)."""
    owns_db = db is None
    database = db or Database(settings.resolved_database_url())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.migrate()
        async with database.write() as conn:
            await user_queries.ensure_default_org(conn, database.now())
        await bootstrap_providers(database, settings)
        if settings.testing_tools:
            from chatd.testing.tools import register_testing_tools  # not loaded in production
            from chatd.tools.registry import default_registry

            register_testing_tools(default_registry())
        worker = Worker(database, app.state.hub, settings) if settings.workers_enabled else None
        if worker is not None:
            await worker.start()
        app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()  # running chats go back to pending
            if owns_db:
                await database.close()

    app = FastAPI(
        title="chatd",
        version=__version__,
        description="Self-hosted AI coding-agent chats, speaking Coder's experimental chats API.",
        lifespan=lifespan,
    )
    app.state.db = database
    app.state.settings = settings
    errors.install(app)
    app.state.hub = EventHub()
    # Fixed paths (/chats/files, /chats/models, /chats/watch, ...) before /chats/{chat}.
    app.include_router(streams.router)
    for module in (
        users,
        organizations,
        files,
        models,
        providers,
        usage_limits,
        chat_list,
        chats,
        messages,
    ):
        app.include_router(module.router)
    app.include_router(titles.router)
    app.include_router(metrics.router)
    streams.document()

    @app.get("/healthz", tags=["General"], response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers HTTP."""
        return {"status": "ok"}

    openapi.install(app)
    # The last added runs first: metrics see every answer; the boundary gives each one its
    # request id and answers what nothing else handled; then the URL and header limits.
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(BoundaryMiddleware)
    app.add_middleware(metrics.MetricsMiddleware)
    return app
