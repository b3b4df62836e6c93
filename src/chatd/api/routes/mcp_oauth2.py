"""A user connects their own account to an MCP server with ``auth_type: oauth2``.

``GET .../oauth2/connect`` sends the browser (307) to the server's authorization URL with a
``state`` and a PKCE challenge (S256). The state is bound to the user and the server, works
once and lapses after :data:`STATE_LIFETIME`; only its hash is kept, with the verifier.
``GET .../oauth2/callback`` (where the authorization server sends the browser back, with the
user's session cookie) takes the state, exchanges the code at the token URL with the
configuration's client id and secret, and stores the user's token sealed; it answers a small
page that tells the opener window and closes. ``DELETE .../oauth2/disconnect`` forgets the
user's token. Tokens are never answered; ``auth_connected`` of a configuration tells whether
the caller holds one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from chatd.api import provider_input as check
from chatd.api.audit import audited_write
from chatd.api.deps import DB, AppSettings, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError, bad_request, not_found
from chatd.api.openapi import uuid_path
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.errors import Response as ErrorEnvelope
from chatd.sdk.mcp import MCPAuthType
from chatd.secretbox import SecretError
from chatd.settings import Settings
from chatd.store import mcp_servers as mq
from chatd.store import mcp_user_tokens as tokens
from chatd.store.sql import RowDict
from chatd.tools import mcp_oauth2 as oauth2

router = APIRouter(prefix="/api/experimental", tags=["MCP"], responses=ERROR_RESPONSES)

BAD_ID = "Invalid MCP server config ID."
BAD_STATE = "Invalid or missing OAuth2 state parameter."
STATE_LIFETIME = dt.timedelta(minutes=10)
ConfigPath = Annotated[str, uuid_path("MCP server config ID.")]


def callback_url(settings: Settings, request: Request, config_id: str) -> str:
    """The redirect URI: under the access URL when one is set, else as the request came."""
    base = settings.access_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/api/experimental/mcp/servers/{config_id}/oauth2/callback"


def _usable(row: RowDict | None) -> RowDict:
    """The configuration, when a user may connect to it (404 / 400 otherwise)."""
    if row is None:
        raise not_found()
    if not row["enabled"]:
        raise bad_request("MCP server is not enabled.")
    if row["auth_type"] != MCPAuthType.oauth2.value:
        raise bad_request("MCP server does not use OAuth2 authentication.")
    return row


def _client(db: DB, row: RowDict) -> oauth2.OAuth2Client:
    try:
        secret = mq.open_secret(db.secrets, row, "oauth2_client_secret")
    except SecretError:
        raise ApiError(500, "The MCP server's OAuth2 client secret cannot be opened.") from None
    return oauth2.OAuth2Client.of(row, secret)


@router.get(
    "/mcp/servers/{server}/oauth2/connect",
    status_code=307,
    response_model=None,
    response_class=Response,
    summary="Start connecting the caller's account to an MCP server (OAuth2)",
    responses={
        307: {
            "description": "To the MCP server's authorization URL (in Location).",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }
    },
)
async def oauth2_connect(
    server: ConfigPath, request: Request, db: DB, actor: CurrentActor, settings: AppSettings
) -> Response:
    config_id = check.parse_id(server, BAD_ID)
    async with db.read() as conn:
        row = _usable(await mq.get_config(conn, config_id))
    if not row["oauth2_auth_url"]:
        raise bad_request("MCP server OAuth2 authorization URL is not configured.")
    client = _client(db, row)
    state, verifier = oauth2.new_state(), oauth2.new_verifier()
    redirect_uri = callback_url(settings, request, str(config_id))
    now = db.now()
    async with db.write() as conn:
        await tokens.add_state(
            conn,
            now,
            state,
            config_id=config_id,
            user_id=actor.user_id,
            code_verifier=verifier,
            redirect_uri=redirect_uri,
            expires_at=now + STATE_LIFETIME,
        )
    target = oauth2.authorization_url(
        client, redirect_uri=redirect_uri, state=state, verifier=verifier
    )
    return RedirectResponse(target, status_code=307)


def _done_page(config_id: str, settings: Settings) -> HTMLResponse:
    """Tells the window that opened the flow (same origin only) and closes; else says so."""
    message = json.dumps({"type": "mcp-oauth2-complete", "serverID": config_id})
    origin = json.dumps(settings.access_origin() or "")
    script = (
        f"const target = {origin} || window.location.origin;\n"
        f"if (window.opener) {{ window.opener.postMessage({message}, target); window.close(); }}\n"
        'else { document.body.innerText = "Authentication successful. '
        'You may close this window."; }'
    ).replace("</", "<\\/")
    body = f"<!DOCTYPE html><html><body><script>{script}</script></body></html>"
    # Answers may load nothing (the security headers' policy); this one runs its own script.
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = f"default-src 'none'; script-src 'sha256-{digest}'; frame-ancestors 'none'"
    return HTMLResponse(
        body, headers={"Cache-Control": "no-store", "Content-Security-Policy": policy}
    )


@router.get(
    "/mcp/servers/{server}/oauth2/callback",
    response_model=None,
    response_class=Response,
    summary="Finish connecting the caller's account to an MCP server (OAuth2)",
    responses={
        200: {
            "description": "A page that tells the window that opened the flow, and closes.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        502: {"model": ErrorEnvelope, "description": "The token endpoint refused the code"},
    },
)
async def oauth2_callback(
    server: ConfigPath,
    request: Request,
    db: DB,
    actor: CurrentActor,
    settings: AppSettings,
    code: str = "",
    state: str = "",
) -> HTMLResponse:
    config_id = check.parse_id(server, BAD_ID)
    async with db.read() as conn:
        row = _usable(await mq.get_config(conn, config_id))
    if not code:
        raise bad_request("Missing authorization code.")
    if not state:
        raise bad_request(BAD_STATE)
    # Taken (deleted) whatever follows: a state works once, for the user who started it.
    async with db.write() as conn:
        flow = await tokens.take_state(conn, state, config_id, actor.user_id)
    if flow is None or flow["expires_at"] <= db.now():
        raise bad_request(BAD_STATE)
    try:
        token = await oauth2.exchange_code(
            _client(db, row),
            code=code,
            verifier=flow["code_verifier"],
            redirect_uri=flow["redirect_uri"],
            now=db.now(),
        )
    except oauth2.OAuth2Error as exc:
        raise ApiError(502, "Failed to exchange authorization code for token.", str(exc)) from None
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.mcp_server_config,
        user_id=actor.user_id,
        status_code=200,
    ) as (conn, change):
        if await mq.get_config(conn, config_id) is None:
            raise not_found()  # deleted during the exchange
        await tokens.save_token(conn, db.now(), config_id, actor.user_id, token, db.secrets)
        change.resource_id = config_id
        change.resource_target = row["slug"]
        change.fields = {"oauth2_token": "connected"}
    return _done_page(str(config_id), settings)


@router.delete(
    "/mcp/servers/{server}/oauth2/disconnect",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Forget the caller's OAuth2 token for an MCP server",
)
async def oauth2_disconnect(
    server: ConfigPath, request: Request, db: DB, actor: CurrentActor
) -> Response:
    config_id = check.parse_id(server, BAD_ID)
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.mcp_server_config,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        await tokens.delete_token(conn, config_id, actor.user_id)
        change.resource_id = config_id
        change.fields = {"oauth2_token": "disconnected"}
    return Response(status_code=204)
