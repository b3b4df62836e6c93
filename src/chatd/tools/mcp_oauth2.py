"""OAuth2 for MCP servers with ``auth_type: oauth2``: the authorization-code flow with PKCE
(RFC 6749 §4.1, RFC 7636) that connects a user's account, and the refresh grant that renews
the user's token before a turn connects.

The client authenticates to the token endpoint with HTTP Basic (RFC 6749 §2.3.1) when it has
a secret, and falls back once to sending the secret in the form when the server refuses the
client that way (401 or ``invalid_client``); a client without a secret sends only its id (a
public client, PKCE alone).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx2

from chatd.store.mcp_user_tokens import OAuth2Token

TOKEN_TIMEOUT = 10.0
# How long before its expiry a token is renewed rather than sent.
REFRESH_LEEWAY = dt.timedelta(seconds=30)


class OAuth2Error(Exception):
    """The token endpoint could not be reached or gave no token."""


@dataclass(frozen=True)
class OAuth2Client:
    """A server's OAuth2 settings (its client secret opened)."""

    client_id: str
    client_secret: str
    auth_url: str
    token_url: str
    scopes: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any], client_secret: str) -> OAuth2Client:
        """The settings of an MCP server configuration row."""
        return cls(
            client_id=row["oauth2_client_id"],
            client_secret=client_secret,
            auth_url=row["oauth2_auth_url"],
            token_url=row["oauth2_token_url"],
            scopes=row["oauth2_scopes"],
        )


def new_state() -> str:
    return secrets.token_urlsafe(32)


def new_verifier() -> str:
    """A PKCE code verifier: 43 characters of base64url (RFC 7636 §4.1)."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    """The ``S256`` challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def authorization_url(client: OAuth2Client, *, redirect_uri: str, state: str, verifier: str) -> str:
    """Where the user's browser goes to grant access (the auth URL's own query kept)."""
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if client.scopes.strip():
        params["scope"] = " ".join(client.scopes.split())
    parts = urlsplit(client.auth_url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _basic(client: OAuth2Client) -> str:
    pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def _parse(response: httpx2.Response) -> dict[str, Any]:
    """The token response's fields (JSON, or form-encoded as some servers answer)."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "text/plain"):
        return dict(parse_qsl(response.text))
    status = response.status_code
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    if status >= 400:
        return {}  # a refusal without a readable reason
    raise OAuth2Error(f"the token endpoint answered {status} without a JSON object")


def _token(body: dict[str, Any], now: dt.datetime, previous: OAuth2Token | None) -> OAuth2Token:
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuth2Error("the token endpoint gave no access_token")
    expiry = None
    expires_in = body.get("expires_in")
    try:
        seconds = float(expires_in) if expires_in not in (None, "") else 0.0
    except (TypeError, ValueError):
        seconds = 0.0
    if seconds > 0:
        expiry = now + dt.timedelta(seconds=seconds)
    refresh = body.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        # A refresh answer may leave the refresh token out: the one held stays good.
        refresh = previous.refresh_token if previous is not None else ""
    token_type = body.get("token_type")
    return OAuth2Token(
        access_token=access,
        refresh_token=refresh,
        token_type=token_type if isinstance(token_type, str) else "",
        expiry=expiry,
    )


async def _request_token(
    client: OAuth2Client,
    form: dict[str, str],
    now: dt.datetime,
    previous: OAuth2Token | None = None,
) -> OAuth2Token:
    if not client.token_url:
        raise OAuth2Error("the server has no OAuth2 token URL")
    headers = {"Accept": "application/json"}
    attempts: list[tuple[dict[str, str], dict[str, str]]] = []
    if client.client_secret:
        attempts.append(({**headers, "Authorization": _basic(client)}, form))
        attempts.append(
            (
                headers,
                {**form, "client_id": client.client_id, "client_secret": client.client_secret},
            )
        )
    else:
        attempts.append((headers, {**form, "client_id": client.client_id}))
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(TOKEN_TIMEOUT)) as http:
        for index, (attempt_headers, attempt_form) in enumerate(attempts):
            try:
                response = await http.post(
                    client.token_url, data=attempt_form, headers=attempt_headers
                )
            except httpx2.HTTPError as exc:
                raise OAuth2Error(f"the token endpoint could not be reached: {exc!r}") from None
            body = _parse(response)
            # Only a refusal of the client's credentials tries the other way of sending them.
            refused = response.status_code == 401 or body.get("error") == "invalid_client"
            if refused and index + 1 < len(attempts):
                continue
            if response.status_code >= 400 or "error" in body:
                reason = body.get("error_description") or body.get("error") or "no reason given"
                raise OAuth2Error(f"the token endpoint refused ({response.status_code}): {reason}")
            return _token(body, now, previous)
    raise OAuth2Error("the token endpoint gave no token")  # pragma: no cover


async def exchange_code(
    client: OAuth2Client, *, code: str, verifier: str, redirect_uri: str, now: dt.datetime
) -> OAuth2Token:
    """The token an authorization code is worth; raises :class:`OAuth2Error`."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return await _request_token(client, form, now)


async def refresh_token(client: OAuth2Client, token: OAuth2Token, now: dt.datetime) -> OAuth2Token:
    """A new token for one whose refresh token is still good; raises :class:`OAuth2Error`."""
    if not token.refresh_token:
        raise OAuth2Error("the token expired and there is no refresh token")
    form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
    return await _request_token(client, form, now, previous=token)
