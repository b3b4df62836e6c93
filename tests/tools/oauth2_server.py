"""A small OAuth2 authorization server for the tests, served over real HTTP on 127.0.0.1 in
the test's event loop: ``/authorize`` grants at once (redirecting with a code, as a user who
clicked "allow"), ``/token`` answers the authorization-code grant (checking the client's
credentials, the redirect URI and the PKCE verifier) and the refresh grant (rotating the
refresh token). Every token request is recorded."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "chatd-client"
CLIENT_SECRET = "oauth-client-secret-Hq2xY7Lq0Z"


@dataclass
class Grant:
    challenge: str
    redirect_uri: str
    scope: str


@dataclass
class OAuth2Server:
    # The access tokens to issue, in order (then random ones).
    access_tokens: list[str] = field(default_factory=list)
    expires_in: int = 3600
    # Whether the client may authenticate with HTTP Basic (else only in the form).
    basic_auth: bool = True
    # Answer tokens form-encoded rather than as JSON.
    form_encoded: bool = False
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    # Every token request: its form, and the client credentials it carried and how.
    requests: list[dict[str, Any]] = field(default_factory=list)
    # What /authorize was asked for.
    authorizations: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    # Run before a refresh grant is answered (a test's stand-in for a concurrent client).
    before_refresh: Callable[[], Awaitable[None]] | None = None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.authorizations.append(params)
        code = secrets.token_urlsafe(16)
        self.codes[code] = Grant(
            params.get("code_challenge", ""), params["redirect_uri"], params.get("scope", "")
        )
        query = urlencode({"code": code, "state": params["state"]})
        return RedirectResponse(f"{params['redirect_uri']}?{query}", status_code=302)

    def _client(self, request: Request, form: dict[str, str]) -> tuple[str, str, str]:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return unquote(user), unquote(password), "basic"
        return form.get("client_id", ""), form.get("client_secret", ""), "form"

    def _issue(self) -> dict[str, Any]:
        access = self.access_tokens.pop(0) if self.access_tokens else secrets.token_urlsafe(16)
        refresh = "rt-" + secrets.token_urlsafe(16)
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": refresh,
        }

    def _answer(self, issued: dict[str, Any]) -> Response:
        if self.form_encoded:
            return Response(urlencode(issued), media_type="application/x-www-form-urlencoded")
        return JSONResponse(issued)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id, client_secret, how = self._client(request, form)
        self.requests.append({"form": form, "client": (client_id, client_secret), "auth": how})
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET) or (
            how == "basic" and not self.basic_auth
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") == "authorization_code":
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant.challenge:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "PKCE verification failed"},
                    status_code=400,
                )
            return self._answer(self._issue())
        if form.get("grant_type") == "refresh_token":
            if self.before_refresh is not None:
                await self.before_refresh()
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            self.refresh_tokens.discard(refresh)
            return self._answer(self._issue())
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)


@asynccontextmanager
async def serve_oauth2(fake: OAuth2Server) -> AsyncIterator[str]:
    """Serve ``fake`` on a free loopback port in this event loop; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield fake.url
    finally:
        server.should_exit = True
        await task
        sock.close()
