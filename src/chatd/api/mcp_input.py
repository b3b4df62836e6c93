"""Validation of MCP server configurations, as created or after an update is applied.

Every problem found becomes one ``validations`` entry of a single 400, so an admin sees them
all at once and nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chatd.api.errors import ApiError
from chatd.sdk.errors import ValidationError
from chatd.sdk.mcp import MCPAuthType, MCPAvailability, MCPTransport

INVALID = "Invalid MCP server configuration."
# A slug names the server's tools (``<slug>__<tool>``): no underscores, so the name splits.
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# An HTTP header name (RFC 9110 token).
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
MAX_NAME = 128
MAX_TEXT = 2048
MAX_SECRET_BYTES = 8192
MAX_HEADERS = 50
MAX_TOOLS = 1000
MAX_TOOL_NAME = 256


@dataclass
class MCPState:
    """A configuration's settings, secrets by presence only (``has_*``)."""

    display_name: str
    slug: str
    description: str
    icon_url: str
    transport: str
    url: str
    auth_type: str
    oauth2_client_id: str
    oauth2_auth_url: str
    oauth2_token_url: str
    oauth2_revocation_url: str
    oauth2_scopes: str
    api_key_header: str
    tool_allow_list: list[str]
    tool_deny_list: list[str]
    availability: str
    has_api_key: bool
    has_custom_headers: bool
    problems: list[ValidationError] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        """The plain columns, as stored."""
        return {
            name: getattr(self, name)
            for name in (
                "display_name",
                "slug",
                "description",
                "icon_url",
                "transport",
                "url",
                "auth_type",
                "oauth2_client_id",
                "oauth2_auth_url",
                "oauth2_token_url",
                "oauth2_revocation_url",
                "oauth2_scopes",
                "api_key_header",
                "tool_allow_list",
                "tool_deny_list",
                "availability",
            )
        }


def _url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URL"
    return None


def _tool_list(name: str, values: list[str], problems: list[ValidationError]) -> list[str]:
    cleaned = [v.strip() for v in values]
    if len(cleaned) > MAX_TOOLS:
        problems.append(ValidationError(field=name, detail=f"at most {MAX_TOOLS} tools"))
    seen: set[str] = set()
    for tool in cleaned:
        if not tool:
            problems.append(ValidationError(field=name, detail="tool names must not be empty"))
        elif len(tool) > MAX_TOOL_NAME:
            problems.append(
                ValidationError(
                    field=name, detail=f"tool names must be at most {MAX_TOOL_NAME} characters"
                )
            )
        elif tool in seen:
            problems.append(ValidationError(field=name, detail=f'tool "{tool}" is listed twice'))
        seen.add(tool)
    return list(dict.fromkeys(t for t in cleaned if t))


def clean_secret(name: str, value: str, problems: list[ValidationError]) -> str:
    """A secret sent as a header value: trimmed, one line, bounded."""
    value = value.strip()
    if len(value.encode()) > MAX_SECRET_BYTES:
        problems.append(ValidationError(field=name, detail="too large"))
    elif any(c in value for c in "\r\n\0"):
        problems.append(ValidationError(field=name, detail="must not contain line breaks"))
    return value


def clean_headers(raw: dict[str, str], problems: list[ValidationError]) -> dict[str, str]:
    if len(raw) > MAX_HEADERS:
        problems.append(
            ValidationError(field="custom_headers", detail=f"at most {MAX_HEADERS} headers")
        )
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not HEADER_NAME.match(name):
            problems.append(
                ValidationError(field="custom_headers", detail=f'"{name}" is not a header name')
            )
            continue
        headers[name] = clean_secret(f"custom_headers.{name}", value, problems)
    return headers


def check(state: MCPState) -> None:
    """Normalise ``state`` in place; raise the 400 listing every problem (with those the
    secrets already added)."""
    problems = state.problems

    def bad(name: str, detail: str) -> None:
        problems.append(ValidationError(field=name, detail=detail))

    state.display_name = state.display_name.strip()
    if not state.display_name:
        bad("display_name", "display_name is required")
    elif len(state.display_name) > MAX_NAME:
        bad("display_name", f"must be at most {MAX_NAME} characters")
    state.slug = state.slug.strip()
    if not state.slug:
        bad("slug", "slug is required")
    elif not SLUG.match(state.slug):
        bad(
            "slug",
            "must be 1-64 lowercase letters, digits and hyphens, starting and ending with a "
            "letter or digit",
        )
    state.description = state.description.strip()
    if len(state.description) > MAX_TEXT:
        bad("description", f"must be at most {MAX_TEXT} characters")
    state.icon_url = state.icon_url.strip()
    if state.icon_url and not state.icon_url.startswith("/"):
        if (problem := _url_problem(state.icon_url)) is not None:
            bad("icon_url", problem)
    if state.transport not in {t.value for t in MCPTransport}:
        bad("transport", "must be one of: " + ", ".join(t.value for t in MCPTransport))
    state.url = state.url.strip()
    if not state.url:
        bad("url", "url is required")
    elif (problem := _url_problem(state.url)) is not None:
        bad("url", problem)
    if state.auth_type not in {a.value for a in MCPAuthType}:
        bad("auth_type", "must be one of: " + ", ".join(a.value for a in MCPAuthType))
    for name in ("oauth2_auth_url", "oauth2_token_url", "oauth2_revocation_url"):
        value = getattr(state, name).strip()
        setattr(state, name, value)
        if value and (problem := _url_problem(value)) is not None:
            bad(name, problem)
    state.oauth2_client_id = state.oauth2_client_id.strip()
    state.oauth2_scopes = state.oauth2_scopes.strip()
    state.api_key_header = state.api_key_header.strip()
    if state.api_key_header and not HEADER_NAME.match(state.api_key_header):
        bad("api_key_header", "is not a header name")
    if state.auth_type == MCPAuthType.api_key.value:
        if not state.api_key_header:
            bad("api_key_header", "required when auth_type is api_key")
        if not state.has_api_key:
            bad("api_key_value", "required when auth_type is api_key")
    if state.auth_type == MCPAuthType.custom_headers.value and not state.has_custom_headers:
        bad("custom_headers", "at least one header is required when auth_type is custom_headers")
    state.tool_allow_list = _tool_list("tool_allow_list", state.tool_allow_list, problems)
    state.tool_deny_list = _tool_list("tool_deny_list", state.tool_deny_list, problems)
    if state.availability not in {a.value for a in MCPAvailability}:
        bad("availability", "must be one of: " + ", ".join(a.value for a in MCPAvailability))
    if problems:
        raise ApiError(400, INVALID, validations=problems)
