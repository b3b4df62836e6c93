"""Request dependencies: the database, settings and the authenticated actor.

Every authenticated request, WebSocket upgrades included, spends one token of its user's
rate-limit bucket (:mod:`chatd.api.rate_limit`); an empty bucket is a 429.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from chatd.api.errors import ApiError, too_many_requests
from chatd.api.login_throttle import LoginThrottle
from chatd.api.rate_limit import TokenBuckets
from chatd.authz import Actor
from chatd.events.hub import EventHub
from chatd.gitsync.client import GitHubClient
from chatd.security import secret_matches, split_token
from chatd.settings import Settings
from chatd.store import users as q
from chatd.store.db import Database
from chatd.workspace.service import Workspaces

SESSION_HEADER = "Coder-Session-Token"
SESSION_COOKIE = "coder_session_token"
SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
# last_used is refreshed at most this often, so reads do not turn into writes.
TOUCH_INTERVAL = dt.timedelta(minutes=1)


# Dependencies are ``async def`` even when they do not wait: FastAPI runs a plain ``def``
# dependency on a worker thread, a thread hop per dependency per request.


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.hub
    return hub


async def get_workspaces(request: Request) -> Workspaces:
    workspaces: Workspaces = request.app.state.workspaces
    return workspaces


async def get_github(request: Request) -> GitHubClient:
    github: GitHubClient = request.app.state.github
    return github


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class TokenSource(enum.Enum):
    """Where a request's session token came from, in the order they are looked at."""

    HEADER = "header"
    COOKIE = "cookie"  # sent by browsers on their own: changes need a same-origin request
    QUERY = "query"  # WebSocket upgrades only: browsers cannot set headers on them


def request_credential(request: HTTPConnection) -> tuple[str, TokenSource] | None:
    """The session token of an HTTP request or a WebSocket upgrade, and its source.

    The query parameter counts only on a WebSocket upgrade: on plain HTTP a token in the
    URL would end up in logs, histories and ``Referer`` headers.
    """
    if token := request.headers.get(SESSION_HEADER):
        return token, TokenSource.HEADER
    if token := request.cookies.get(SESSION_COOKIE):
        return token, TokenSource.COOKIE
    if request.scope["type"] == "websocket" and (token := request.query_params.get(SESSION_COOKIE)):
        return token, TokenSource.QUERY
    return None


def request_token(request: HTTPConnection) -> str | None:
    """The session token of an HTTP request or a WebSocket upgrade."""
    credential = request_credential(request)
    return credential[0] if credential is not None else None


async def authenticate(db: Database, token: str | None) -> Actor:
    if not token:
        raise ApiError(
            401,
            SIGNED_OUT,
            f'Cookie "{SESSION_COOKIE}" or query parameter must be provided.',
        )
    parts = split_token(token)
    if parts is None:
        raise ApiError(401, SIGNED_OUT, "Invalid API key format.")
    key_id, secret = parts
    now = db.now()
    key = await db.run_read(q.get_session_key, key_id)
    if key is None or not secret_matches(key.hashed_secret, secret):
        raise ApiError(401, SIGNED_OUT, "API key is invalid.")
    if key.expires_at <= now:
        raise ApiError(401, SIGNED_OUT, "API key expired.")
    user = key.user
    if user is None or user.status != "active":
        raise ApiError(401, SIGNED_OUT, "User is not active.")
    if now - key.last_used > TOUCH_INTERVAL:
        await db.run_write_one(q.touch_api_key, key_id, now)
    return Actor(
        user_id=user.id,
        username=user.username,
        email=user.email,
        name=user.name,
        is_owner=user.is_owner,
        org_roles=key.memberships,
    )


def client_address(conn: HTTPConnection) -> str:
    """The client's address: the socket peer, or what a trusted proxy said it was (uvicorn
    rewrites the peer only for proxies listed in ``CHATD_FORWARDED_ALLOW_IPS``)."""
    return conn.client.host if conn.client else ""


def rate_limit(conn: HTTPConnection, actor: Actor) -> None:
    buckets: TokenBuckets = conn.app.state.rate_limit
    wait = buckets.take(actor.user_id)
    if wait is not None:
        raise too_many_requests(
            "Rate limit exceeded.",
            wait,
            f"At most {buckets.per_minute} requests a minute (bursts of {buckets.burst}) per "
            f"user; try again in {max(1, math.ceil(wait))} seconds.",
        )


async def authenticate_connection(conn: HTTPConnection) -> Actor:
    """The actor of a request or WebSocket upgrade, after their rate limit."""
    actor = await authenticate(conn.app.state.db, request_token(conn))
    rate_limit(conn, actor)
    return actor


async def current_actor(request: Request) -> Actor:
    actor = await authenticate_connection(request)
    request.state.actor = actor
    return actor


async def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


DB = Annotated[Database, Depends(get_db)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Hub = Annotated[EventHub, Depends(get_hub)]
Throttle = Annotated[LoginThrottle, Depends(get_login_throttle)]
WorkspacesService = Annotated[Workspaces, Depends(get_workspaces)]
GitHub = Annotated[GitHubClient, Depends(get_github)]
