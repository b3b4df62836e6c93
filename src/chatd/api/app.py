"""The FastAPI application: routers, error envelope, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from chatd import __version__
from chatd.api import docs, errors, metrics, openapi
from chatd.api.boundary import BoundaryMiddleware
from chatd.api.crosssite import CrossSiteGuard
from chatd.api.login_throttle import LoginLimits, LoginThrottle
from chatd.api.middleware import RequestLimitsMiddleware, SecurityHeadersMiddleware
from chatd.api.rate_limit import TokenBuckets
from chatd.api.routes import (
    agent_rpc,
    chat_costs,
    chat_desktop,
    chat_git,
    chat_list,
    chats,
    files,
    github_tokens,
    mcp_oauth2,
    mcp_servers,
    messages,
    models,
    organizations,
    providers,
    replica_relay,
    streams,
    templates,
    titles,
    usage_limits,
    users,
    workspaces,
)
from chatd.api.routes import audit as audit_routes
from chatd.api.webui import WebUi
from chatd.engine.replica import ReplicaRegistry
from chatd.engine.worker import Worker
from chatd.events.hints import HintListener
from chatd.events.hub import EventHub
from chatd.events.redis_turns import RedisTurns
from chatd.events.relay import Relays
from chatd.gitsync.client import GitHubClient
from chatd.gitsync.refresher import Refresher
from chatd.gitsync.schedule import RefreshPolicy
from chatd.provider_bootstrap import bootstrap_providers
from chatd.secret_key import box_for
from chatd.security import limit_hashing, prepare_dummy_hash
from chatd.settings import Settings
from chatd.store import templates as template_queries
from chatd.store import users as user_queries
from chatd.store.db import Database
from chatd.workspace.service import Workspaces


class ChatdApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside FastAPI's own error middleware, so that a 500 carries the headers too.
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app(settings: Settings, db: Database | None = None) -> FastAPI:
    """Build the app. ``db`` is owned by the caller when given (tests share one)."""
    owns_db = db is None
    database = db or Database(
        settings.resolved_database_url(), secrets=box_for(settings), **settings.database_options()
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await database.migrate()
        async with database.write() as conn:
            await user_queries.ensure_default_org(conn, database.now())
            await template_queries.ensure_builtin_templates(conn, database.now())
        await app.state.workspaces.open()
        await bootstrap_providers(database, settings)
        await prepare_dummy_hash()  # so that no login pays for it
        if settings.testing_tools:
            from chatd.testing.tools import register_testing_tools  # not loaded in production
            from chatd.tools.registry import default_registry

            register_testing_tools(default_registry())
        # Other replicas' events reach this one's hub through their hints (PostgreSQL only).
        hints = None if database.is_sqlite else HintListener(database, app.state.hub)
        if hints is not None:
            await hints.start()
        worker = (
            Worker(
                database,
                app.state.hub,
                settings,
                workspaces=app.state.workspaces,
                worker_id=database.origin,
            )
            if settings.workers_enabled
            else None
        )
        if worker is not None:
            await worker.start()
        app.state.worker = worker
        # Where the other replicas reach this one, registered under its worker's id (the id
        # chats.worker_id names), while its workers run.
        registry = (
            ReplicaRegistry(
                database,
                worker.worker_id,
                settings.resolved_internal_url(),
                heartbeat_interval=settings.heartbeat_interval,
                stale_after=settings.stale_after,
            )
            if worker is not None
            else None
        )
        if registry is not None:
            await registry.start()
        app.state.replicas = registry
        # A turn running on another replica reaches this one's clients through Redis Streams
        # when configured, else through a relay from that replica.
        relays: Relays | RedisTurns | None = None
        if hints is not None and settings.redis_url:
            relays = RedisTurns(database, app.state.hub, settings.redis_url)
            await relays.start()
        elif hints is not None and registry is not None:
            relays = Relays(database, app.state.hub, registry.token, registry.address_of)
        app.state.turn_source = relays if isinstance(relays, RedisTurns) else None
        github = GitHubClient(settings.resolved_github_api_url(), timeout=settings.github_timeout)
        app.state.github = github
        # The pull-request status refresher runs where the chat workers run.
        refresher = (
            Refresher(
                database,
                app.state.hub,
                github,
                settings.github_site(),
                policy=RefreshPolicy.from_settings(settings),
                poll_interval=settings.github_poll_interval,
            )
            if settings.workers_enabled
            else None
        )
        if refresher is not None:
            await refresher.start()
        try:
            yield
        finally:
            if refresher is not None:
                await refresher.stop()
            await github.aclose()
            if worker is not None:
                await worker.stop()  # running chats go back to pending
            if relays is not None:
                await relays.close()
            if registry is not None:
                await registry.stop()
            if hints is not None:
                await hints.stop()
            await app.state.hub.close()
            await app.state.workspaces.close()  # the local agents stop
            if owns_db:
                await database.close()

    app = ChatdApp(
        title="chatd",
        version=__version__,
        description="Self-hosted AI coding-agent chats, speaking Coder's experimental chats API.",
        lifespan=lifespan,
        # /docs is served by chatd.api.docs without a CDN; ReDoc is not served.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.db = database
    app.state.settings = settings
    limit_hashing(settings.password_hash_concurrency)
    app.state.login_throttle = LoginThrottle(
        LoginLimits(
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_address,
            window=settings.login_failure_window,
            max_lockout=settings.login_max_lockout,
        )
    )
    app.state.rate_limit = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
    errors.install(app)
    app.state.hub = EventHub(database)
    app.state.turn_source = None
    # Templates, workspaces, and the agents connected to (or started by) this replica.
    app.state.workspaces = Workspaces(database, settings, hub=app.state.hub)
    # Fixed paths (/chats/files, /chats/models, /chats/watch, ...) before /chats/{chat}.
    app.include_router(streams.router)
    app.include_router(replica_relay.router)
    app.include_router(chat_desktop.router)
    app.state.desktop_ready_timeout = chat_desktop.READY_TIMEOUT
    for module in (
        users,
        github_tokens,
        organizations,
        files,
        models,
        providers,
        mcp_servers,
        mcp_oauth2,
        usage_limits,
        chat_costs,
        audit_routes,
        chat_list,
        chats,
        messages,
        templates,
        workspaces,
        agent_rpc,
        chat_git,
    ):
        app.include_router(module.router)
    app.include_router(titles.router)
    app.include_router(metrics.router)
    app.include_router(docs.router)
    streams.document()
    agent_rpc.document()

    @app.get("/healthz", tags=["General"], response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers HTTP."""
        return {"status": "ok"}

    openapi.install(app)
    # The last added runs first: metrics see every answer; the boundary gives each one its
    # request id and answers what nothing else handled; then the URL and header limits, then
    # the refusal of cross-site requests; then the web UI takes the pages outside the API.
    app.add_middleware(WebUi)
    app.add_middleware(CrossSiteGuard, settings=settings)
    app.add_middleware(RequestLimitsMiddleware)
    app.add_middleware(BoundaryMiddleware)
    app.add_middleware(metrics.MetricsMiddleware)
    return app
