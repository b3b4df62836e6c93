"""The FastAPI application: routers, error envelope, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd import __version__
from chatd.api import errors, openapi
from chatd.api.routes import (
    chat_list,
    chats,
    files,
    messages,
    models,
    organizations,
    providers,
    streams,
    users,
)
from chatd.events.hub import EventHub
from chatd.provider_bootstrap import bootstrap_providers
from chatd.settings import Settings
from chatd.store import users as user_queries
from chatd.store.db import Database


class NoSniffMiddleware:
    """``X-Content-Type-Options: nosniff`` on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_header)


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
        try:
            yield
        finally:
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
    # Fixed paths (/chats/files, /chats/models, ...) before /chats/{chat}.
    for module in (users, organizations, files, models, providers, chat_list, chats, messages):
        app.include_router(module.router)
    streams.document()

    @app.get("/healthz", tags=["General"], response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers HTTP."""
        return {"status": "ok"}

    openapi.install(app)
    app.add_middleware(NoSniffMiddleware)
    return app
