"""Users, login and API tokens, compatible with Coder's /api/v2 where it has the endpoint.

A ``{user}`` the caller may not see answers exactly as a missing one (404), and a login costs
one argon2 verification whether or not the account exists, so neither tells which accounts
exist. Failed logins are throttled (:mod:`chatd.api.login_throttle`); logins, failed logins,
logouts, users and tokens are audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from chatd import accounts
from chatd.api import audit
from chatd.api.deps import (
    DB,
    SESSION_COOKIE,
    AppSettings,
    CurrentActor,
    Throttle,
    client_address,
    request_token,
)
from chatd.api.errors import ERROR_RESPONSES, ApiError, forbidden, not_found, too_many_requests
from chatd.api.login_throttle import Attempt, Throttled
from chatd.api.openapi import json_body
from chatd.api.params import read_json
from chatd.api.user_param import UserPath, resolve_user
from chatd.sdk import users as w
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.errors import Response as Response_
from chatd.security import hash_password, split_token, verify_password
from chatd.store import users as q
from chatd.store.db import Database
from chatd.store.users import ORG_ADMIN_ROLE, UserRow

router = APIRouter(prefix="/api/v2", tags=["Users"], responses=ERROR_RESPONSES)
log = structlog.get_logger(__name__)

# How much of an attempted login name the audit log keeps.
MAX_AUDITED_LOGIN = 256


async def user_view(db: Database, user: UserRow) -> w.User:
    async with db.read() as conn:
        roles_by_org = await q.memberships(conn, user.id)
    roles = [w.Role(name="owner", display_name="Owner")] if user.is_owner else []
    for org_id, org_roles in roles_by_org.items():
        roles += [
            w.Role(name=r, display_name="Organization Admin", organization_id=org_id)
            for r in org_roles
            if r == ORG_ADMIN_ROLE
        ]
    return w.User(
        id=user.id,
        username=user.username,
        email=user.email,
        name=user.name,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_seen_at=user.last_seen_at,
        status=user.status,
        organization_ids=sorted(roles_by_org, key=str),
        roles=roles,
    )


@router.post(
    "/users/first",
    status_code=201,
    response_model=w.CreateFirstUserResponse,
    openapi_extra=json_body(w.CreateFirstUserRequest),
)
async def create_first_user(request: Request, db: DB) -> w.CreateFirstUserResponse:
    body = await read_json(request, w.CreateFirstUserRequest)
    problems = accounts.validate_new_user(body.email, body.username, body.password)
    if problems:
        raise ApiError(400, "Validation failed.", validations=problems)
    async with db.read() as conn:
        if await q.count_users(conn) > 0:
            raise ApiError(409, "The initial user has already been created.")
    hashed_password = await hash_password(body.password)
    async with audit.audited_write(
        db, request, AuditAction.create, ResourceType.user, user_id=None, status_code=201
    ) as (conn, change):
        now = db.now()
        org_id = await q.ensure_default_org(conn, now)  # serialises concurrent first users
        if await q.count_users(conn) > 0:
            raise ApiError(409, "The initial user has already been created.")
        user_id = await accounts.create_user(
            conn,
            now=now,
            email=body.email,
            username=body.username,
            name=body.name,
            hashed_password=hashed_password,
            is_owner=True,
            org_ids=[org_id],
            org_roles=[ORG_ADMIN_ROLE],
        )
        change.resource_id = user_id
        change.resource_target = body.username
        change.fields = {"email": body.email, "owner": True}
    return w.CreateFirstUserResponse(user_id=user_id, organization_id=org_id)


@router.post(
    "/users/login",
    status_code=201,
    response_model=w.LoginWithPasswordResponse,
    openapi_extra=json_body(w.LoginWithPasswordRequest),
)
async def login(
    request: Request, db: DB, throttle: Throttle, settings: AppSettings
) -> JSONResponse:
    body = await read_json(request, w.LoginWithPasswordRequest)
    try:
        with throttle.attempt(body.email, client_address(request)) as attempt:
            return await _login(request, db, body, attempt, settings.secure_cookies())
    except Throttled as exc:
        # Only a log line: a row for every refused attempt would let a flood of them write.
        log.warning(
            "audit.login_throttled",
            ip=client_address(request),
            login=body.email[:MAX_AUDITED_LOGIN],
            by=exc.reason,
            retry_after=round(exc.retry_after),
        )
        raise too_many_requests("Too many failed login attempts.", exc.retry_after) from None


async def _login(
    request: Request,
    db: Database,
    body: w.LoginWithPasswordRequest,
    attempt: Attempt,
    secure_cookie: bool,
) -> JSONResponse:
    async with db.read() as conn:
        user = await q.get_user_by_login(conn, body.email) if body.email else None
    # Without a user (or a password) this verifies against a dummy hash: the same cost.
    matches = await verify_password(user.hashed_password if user else None, body.password)
    if user is None or not matches or user.status != "active":
        message = (
            "Your account is suspended."
            if user is not None and matches
            else "Incorrect email or password."
        )
        fields: dict[str, Any] = {"login": body.email[:MAX_AUDITED_LOGIN]}
        if (lockout := attempt.failed()) is not None:
            fields["lockout_seconds"] = round(lockout)
        await audit.record_alone(
            db,
            audit.entry(
                request,
                AuditAction.login,
                ResourceType.api_key,
                401,
                user_id=user.id if user else None,
                resource_id=user.id if user else None,
                resource_target=user.username if user else "",
                fields={**fields, "reason": message},
            ),
        )
        raise ApiError(401, message)
    attempt.succeeded(user.email, user.username)
    async with audit.audited_write(
        db, request, AuditAction.login, ResourceType.api_key, user_id=user.id, status_code=201
    ) as (conn, change):
        token = await accounts.issue_token(
            conn,
            now=db.now(),
            user_id=user.id,
            login_type="password",
            lifetime=accounts.SESSION_LIFETIME,
        )
        change.resource_id = user.id
        change.resource_target = token.partition("-")[0]  # the key id, never the secret
        change.fields = {"login_type": "password"}
    response = JSONResponse(
        w.LoginWithPasswordResponse(session_token=token).model_dump(), status_code=201
    )
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure_cookie)
    return response


@router.post("/users/logout", response_model=Response_)
async def logout(
    request: Request, actor: CurrentActor, db: DB, settings: AppSettings
) -> JSONResponse:
    parts = split_token(request_token(request) or "")
    if parts is not None:
        async with audit.audited_write(
            db,
            request,
            AuditAction.logout,
            ResourceType.api_key,
            user_id=actor.user_id,
            status_code=200,
        ) as (conn, change):
            await q.delete_api_key(conn, actor.user_id, parts[0])
            change.resource_id = actor.user_id
            change.resource_target = parts[0]
    response = JSONResponse({"message": "Logged out!"})
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=settings.secure_cookies()
    )
    return response


@router.get("/users", response_model=w.GetUsersResponse)
async def list_users(actor: CurrentActor, db: DB) -> w.GetUsersResponse:
    """Every user for a site owner; anyone else sees only themself."""
    async with db.read() as conn:
        rows = await q.list_users(conn)
    visible = [u for u in rows if actor.is_owner or u.id == actor.user_id]
    views = [await user_view(db, u) for u in visible]
    return w.GetUsersResponse(users=views, count=len(views))


@router.get("/users/{user}", response_model=w.User)
async def get_user(user: UserPath, actor: CurrentActor, db: DB) -> w.User:
    return await user_view(db, await resolve_user(db, actor, user))


@router.post(
    "/users", status_code=201, response_model=w.User, openapi_extra=json_body(w.CreateUserRequest)
)
async def create_user(request: Request, actor: CurrentActor, db: DB) -> w.User:
    if not actor.is_owner:
        raise forbidden()
    body = await read_json(request, w.CreateUserRequest)
    problems = accounts.validate_new_user(body.email, body.username, body.password)
    if problems:
        raise ApiError(400, "Validation failed.", validations=problems)
    hashed_password = await hash_password(body.password)
    async with audit.audited_write(
        db, request, AuditAction.create, ResourceType.user, user_id=actor.user_id, status_code=201
    ) as (conn, change):
        org_ids = body.organization_ids or []
        for org_id in org_ids:
            if not await q.org_exists(conn, org_id):
                raise ApiError(400, f'Organization does not exist with the provided id "{org_id}".')
        if not org_ids:
            default = await q.ensure_default_org(conn, db.now())
            org_ids = [default]
        if await q.user_exists(conn, body.email, body.username):
            raise ApiError(409, "User already exists.")
        user_id = await accounts.create_user(
            conn,
            now=db.now(),
            email=body.email,
            username=body.username,
            name=body.name,
            hashed_password=hashed_password,
            is_owner=False,
            org_ids=org_ids,
        )
        change.resource_id = user_id
        change.resource_target = body.username
        change.fields = {"email": body.email, "organization_ids": [str(o) for o in org_ids]}
        user = await q.get_user(conn, user_id)
    assert user is not None
    return await user_view(db, user)


@router.post(
    "/users/{user}/keys/tokens",
    status_code=201,
    response_model=w.GenerateAPIKeyResponse,
    openapi_extra=json_body(w.CreateTokenRequest),
)
async def create_token(
    user: UserPath, request: Request, actor: CurrentActor, db: DB
) -> w.GenerateAPIKeyResponse:
    target = await resolve_user(db, actor, user)
    body = await read_json(request, w.CreateTokenRequest)
    lifetime = accounts.DEFAULT_TOKEN_LIFETIME
    if body.lifetime:
        if body.lifetime < 0:
            raise ApiError(400, "Lifetime must be positive.")
        lifetime = dt.timedelta(microseconds=body.lifetime // 1000)
        if lifetime > accounts.MAX_TOKEN_LIFETIME:
            raise ApiError(
                400,
                "Failed to validate create API key request.",
                f"lifetime must be less than {accounts.MAX_TOKEN_LIFETIME.days} days",
            )
    name = body.token_name.strip()
    async with audit.audited_write(
        db,
        request,
        AuditAction.create,
        ResourceType.api_key,
        user_id=actor.user_id,
        status_code=201,
    ) as (conn, change):
        if name and await q.token_name_taken(conn, target.id, name):
            raise ApiError(409, f"A token with name {name!r} already exists.")
        token = await accounts.issue_token(
            conn,
            now=db.now(),
            user_id=target.id,
            login_type="token",
            lifetime=lifetime,
            token_name=name,
        )
        change.resource_id = target.id
        change.resource_target = token.partition("-")[0]  # the key id, never the secret
        change.fields = {"token_name": name, "lifetime_seconds": int(lifetime.total_seconds())}
    return w.GenerateAPIKeyResponse(key=token)


@router.get("/users/{user}/keys/tokens", response_model=list[w.APIKey])
async def list_tokens(user: UserPath, actor: CurrentActor, db: DB) -> list[w.APIKey]:
    target = await resolve_user(db, actor, user)
    async with db.read() as conn:
        rows = await q.list_tokens(conn, target.id)
    return [
        w.APIKey(
            id=r.id,
            user_id=r.user_id,
            last_used=r.last_used,
            expires_at=r.expires_at,
            created_at=r.created_at,
            updated_at=r.created_at,
            login_type=r.login_type,
            token_name=r.token_name,
            lifetime_seconds=int((r.expires_at - r.created_at).total_seconds()),
        )
        for r in rows
    ]


@router.delete("/users/{user}/keys/{keyid}", status_code=204)
async def delete_token(
    user: UserPath, keyid: str, request: Request, actor: CurrentActor, db: DB
) -> Response:
    target = await resolve_user(db, actor, user)
    async with audit.audited_write(
        db,
        request,
        AuditAction.delete,
        ResourceType.api_key,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        if not await q.delete_api_key(conn, target.id, keyid):
            raise not_found()
        change.resource_id = target.id
        change.resource_target = keyid
    return Response(status_code=204)
