"""/api/experimental/mcp/servers: site owners manage MCP servers, members see the enabled
ones; secrets are sealed at rest and never answered; chats name servers that exist."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from chatd.api.routes.mcp_servers import logged_url
from chatd.secretbox import SecretBox, is_ciphertext, key_id, key_id_of
from chatd.store import mcp_servers as mq
from chatd.store.db import Database
from chatd.store.secret_columns import reseal_all
from chatd.store.tables import audit_logs, mcp_server_configs
from tests.api.chat_helpers import set_chat_columns, stored_chat
from tests.api.chat_requests import body as chat_body
from tests.api.chat_requests import create as create_chat
from tests.helpers import TEST_SECRET_KEY, Api, ApiUser, envelope, make_chat
from tests.store.test_secret_columns import everything_stored

pytestmark = pytest.mark.anyio

URL = "/api/experimental/mcp/servers"
API_KEY = "mcp-key-Zr9XkP4mWd1BJf83"
HEADER_VALUE = "hdr-Lq0ZpA6tVn2C7Hq2xY"
CLIENT_SECRET = "oauth-secret-Wd1BJf83Lq0Zp"
SECRETS = (API_KEY, HEADER_VALUE, CLIENT_SECRET)
NEW_KEY = bytes(range(100, 132))


def server(**extra: Any) -> dict[str, Any]:
    return {
        "display_name": "Docs search",
        "slug": "docs",
        "transport": "streamable_http",
        "url": "https://mcp.example.com/mcp",
        "auth_type": "api_key",
        "api_key_header": "X-Api-Key",
        "api_key_value": API_KEY,
        "enabled": True,
    } | extra


async def make(api: Api, admin: ApiUser, **extra: Any) -> dict[str, Any]:
    r = await api.request("POST", URL, admin, json=server(**extra))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def raw_rows(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [r.as_dict() for r in await conn.execute(sa.select(mcp_server_configs))]


async def test_create_get_list_update_delete(api: Api, admin: ApiUser, db: Database) -> None:
    created = await make(
        api,
        admin,
        description=" Searches the docs ",
        tool_allow_list=["search", " fetch "],
        allow_in_plan_mode=True,
    )
    assert created["slug"] == "docs" and created["display_name"] == "Docs search"
    assert created["description"] == "Searches the docs"
    assert created["transport"] == "streamable_http" and created["auth_type"] == "api_key"
    assert created["api_key_header"] == "X-Api-Key"
    assert created["has_api_key"] is True
    assert (created["has_oauth2_secret"], created["has_custom_headers"]) == (False, False)
    assert created["tool_allow_list"] == ["search", "fetch"] and created["tool_deny_list"] == []
    assert (created["enabled"], created["allow_in_plan_mode"]) == (True, True)
    assert created["availability"] == "default_off" and created["auth_connected"] is True
    assert "api_key_value" not in created

    r = await api.request("GET", f"{URL}/{created['id']}", admin)
    assert r.status_code == 200 and r.json() == created
    r = await api.request("GET", URL, admin)
    assert r.json() == [created]

    # A PATCH changes what it names and keeps the rest, the key included.
    r = await api.request(
        "PATCH",
        f"{URL}/{created['id']}",
        admin,
        json={"display_name": "Docs", "enabled": False, "tool_deny_list": ["delete"]},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["display_name"] == "Docs" and updated["enabled"] is False
    assert updated["tool_deny_list"] == ["delete"] and updated["has_api_key"] is True
    assert updated["slug"] == "docs" and updated["created_at"] == created["created_at"]
    async with db.read() as conn:
        row = await mq.get_config(conn, uuid.UUID(created["id"]))
        assert row is not None
        assert mq.auth_headers(db.secrets, row) == {"X-Api-Key": API_KEY}

    # Switching to custom headers with the headers, and clearing the key.
    r = await api.request(
        "PATCH",
        f"{URL}/{created['id']}",
        admin,
        json={
            "auth_type": "custom_headers",
            "custom_headers": {"Authorization": f"Bearer {HEADER_VALUE}"},
            "api_key_value": "",
        },
    )
    assert r.status_code == 200, r.text
    assert (r.json()["has_api_key"], r.json()["has_custom_headers"]) == (False, True)
    async with db.read() as conn:
        row = await mq.get_config(conn, uuid.UUID(created["id"]))
        assert row is not None
        assert mq.auth_headers(db.secrets, row) == {"Authorization": f"Bearer {HEADER_VALUE}"}

    r = await api.request("DELETE", f"{URL}/{created['id']}", admin)
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "PATCH", "DELETE"):
        r = await api.request(method, f"{URL}/{created['id']}", admin, json={})
        assert r.status_code == 404, (method, r.text)
    assert (await api.request("GET", URL, admin)).json() == []

    async with db.read() as conn:
        query = sa.select(audit_logs.c.action, audit_logs.c.resource_target).where(
            audit_logs.c.resource_type == "mcp_server_config"
        )
        logged = [tuple(r) for r in await conn.execute(query)]
    assert sorted(logged) == sorted(
        [("create", "docs"), ("write", "docs"), ("write", "docs"), ("delete", "docs")]
    )


async def test_the_audit_log_keeps_the_url_without_what_may_hold_a_token(
    api: Api, admin: ApiUser, db: Database
) -> None:
    url = "https://user:pass-9fQ2@mcp.example.com:8443/mcp?token=tok-9fQ2#frag-9fQ2"
    await make(api, admin, url=url)
    async with db.read() as conn:
        query = sa.select(audit_logs.c.additional_fields).where(
            audit_logs.c.resource_type == "mcp_server_config"
        )
        (fields,) = [r[0] for r in await conn.execute(query)]
    assert fields["url"] == "https://mcp.example.com:8443/mcp"
    assert "9fQ2" not in str(fields)
    assert logged_url("http://[::1]:9000/a?b=c") == "http://[::1]:9000/a"


async def test_bad_input_is_400_with_every_problem_and_writes_nothing(
    api: Api, admin: ApiUser, db: Database
) -> None:
    r = await api.request(
        "POST",
        URL,
        admin,
        json={
            "display_name": " ",
            "slug": "Bad_Slug",
            "transport": "stdio",
            "url": "ftp://x",
            "auth_type": "api_key",
            "custom_headers": {"bad header": "v"},
            "tool_allow_list": ["a", "a", ""],
            "availability": "always",
            "oauth2_token_url": "not a url",
        },
    )
    assert r.status_code == 400, r.text
    err = envelope(r)
    assert err["message"] == "Invalid MCP server configuration."
    fields = {v["field"] for v in err["validations"]}
    assert fields == {
        "display_name",
        "slug",
        "transport",
        "url",
        "api_key_header",
        "api_key_value",
        "custom_headers",
        "tool_allow_list",
        "availability",
        "oauth2_token_url",
    }
    # Missing required fields.
    r = await api.request("POST", URL, admin, json={})
    assert r.status_code == 400
    fields = {v["field"] for v in envelope(r)["validations"]}
    assert {"display_name", "slug", "transport", "url", "auth_type"} <= fields
    # Wrong JSON types are the same envelope.
    r = await api.request("POST", URL, admin, json=server(enabled="yes"))
    assert r.status_code == 400 and envelope(r)["validations"]
    r = await api.request("POST", URL, admin, json=server(api_key_value="a\nb"))
    assert r.status_code == 400
    assert [v["field"] for v in envelope(r)["validations"]] == ["api_key_value"]
    assert await raw_rows(db) == []

    created = await make(api, admin)
    before = await raw_rows(db)
    r = await api.request("POST", URL, admin, json=server(display_name="Other"))
    assert r.status_code == 409
    assert envelope(r)["message"] == "An MCP server with this slug already exists."
    other = await make(api, admin, slug="other", auth_type="none", api_key_value=None)
    r = await api.request("PATCH", f"{URL}/{other['id']}", admin, json={"slug": "docs"})
    assert r.status_code == 409
    # An update whose result would be invalid changes nothing.
    for patch in (
        {"api_key_header": ""},
        {"auth_type": "custom_headers"},
        {"url": "nope", "display_name": "New"},
        {"transport": "ws"},
    ):
        r = await api.request("PATCH", f"{URL}/{created['id']}", admin, json=patch)
        assert r.status_code == 400, (patch, r.text)
        assert envelope(r)["validations"]
    assert [r for r in await raw_rows(db) if r["id"] == uuid.UUID(created["id"])] == before

    r = await api.request("GET", f"{URL}/not-a-uuid", admin)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Invalid MCP server config ID."
    r = await api.request("GET", f"{URL}/{uuid.uuid4()}", admin)
    assert r.status_code == 404


async def test_secrets_are_sealed_never_answered_and_rotated(
    api: Api, admin: ApiUser, member: ApiUser, db: Database
) -> None:
    await make(api, admin)
    await make(
        api,
        admin,
        slug="headers",
        auth_type="custom_headers",
        api_key_header=None,
        api_key_value=None,
        custom_headers={"X-Token": HEADER_VALUE},
    )
    oauth = await make(
        api,
        admin,
        slug="oauth",
        auth_type="oauth2",
        api_key_header=None,
        api_key_value=None,
        oauth2_client_id="client-1",
        oauth2_client_secret=CLIENT_SECRET,
        oauth2_auth_url="https://auth.example.com/authorize",
        oauth2_token_url="https://auth.example.com/token",
        oauth2_scopes="read write",
    )
    assert oauth["has_oauth2_secret"] is True and oauth["oauth2_client_id"] == "client-1"
    assert oauth["auth_connected"] is False

    stored = await everything_stored(db)
    assert not any(s.encode() in stored for s in SECRETS)
    rows = await raw_rows(db)
    sealed = [r[c] for r in rows for c in mq.MCP_SECRET_COLUMNS if r[c]]
    assert len(sealed) == 3
    for value in sealed:
        assert is_ciphertext(value) and key_id_of(value) == key_id(TEST_SECRET_KEY)

    for user in (admin, member):
        text = (await api.request("GET", URL, user)).text
        for server_id in (r["id"] for r in rows):
            text += (await api.request("GET", f"{URL}/{server_id}", user)).text
        assert not any(s in text for s in SECRETS)
        assert not any(value in text for value in sealed)

    # `chatd secrets rotate` re-seals them under the new key; they still open.
    box = SecretBox(NEW_KEY, [TEST_SECRET_KEY])
    async with db.write() as conn:
        done = await reseal_all(conn, box)
    assert done.resealed >= 3
    rows = await raw_rows(db)
    resealed = [r[c] for r in rows for c in mq.MCP_SECRET_COLUMNS if r[c]]
    assert len(resealed) == 3 and not set(resealed) & set(sealed)
    assert all(key_id_of(v) == key_id(NEW_KEY) for v in resealed)
    by_slug = {r["slug"]: r for r in rows}
    assert mq.auth_headers(box, by_slug["docs"]) == {"X-Api-Key": API_KEY}
    assert mq.auth_headers(box, by_slug["headers"]) == {"X-Token": HEADER_VALUE}
    assert mq.open_secret(box, by_slug["oauth"], "oauth2_client_secret") == CLIENT_SECRET


async def test_members_see_enabled_servers_without_auth_settings(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    shown = await make(api, admin)
    hidden = await make(api, admin, slug="off", enabled=False)
    r = await api.request("GET", URL, member)
    assert r.status_code == 200
    [seen] = r.json()
    assert seen["id"] == shown["id"] and seen["url"] == shown["url"]
    assert "api_key_header" not in seen and seen["has_api_key"] is False
    r = await api.request("GET", f"{URL}/{shown['id']}", member)
    assert r.status_code == 200 and r.json() == seen
    r = await api.request("GET", f"{URL}/{hidden['id']}", member)
    assert r.status_code == 404
    assert len((await api.request("GET", URL, admin)).json()) == 2

    r = await api.request("POST", URL, member, json=server(slug="mine"))
    assert r.status_code == 403
    for method in ("PATCH", "DELETE"):
        r = await api.request(method, f"{URL}/{shown['id']}", member, json={"enabled": False})
        assert r.status_code == 403, method
    assert (await api.request("GET", f"{URL}/{shown['id']}", admin)).json() == shown


async def test_chats_take_existing_enabled_servers(
    api: Api, admin: ApiUser, member: ApiUser, db: Database, model_id: uuid.UUID
) -> None:
    good = (await make(api, admin))["id"]
    off = (await make(api, admin, slug="off", enabled=False))["id"]
    unknown = str(uuid.uuid4())

    r = await create_chat(api, member, json=chat_body(member, mcp_server_ids=[good]))
    assert r.status_code == 201, r.text
    assert r.json()["mcp_server_ids"] == [good]
    r = await create_chat(api, member, json=chat_body(member, mcp_server_ids=[good, unknown, off]))
    assert r.status_code == 400
    assert envelope(r) == {
        "message": "One or more MCP server IDs are invalid.",
        "detail": f"Invalid IDs: {unknown}, {off}",
    }

    chat_id = await make_chat(db, member, model_id)
    await set_chat_columns(db, chat_id, status="waiting")
    send = f"/api/experimental/chats/{chat_id}/messages"
    content = [{"type": "text", "text": "hi"}]
    r = await api.request("POST", send, member, json={"content": content, "mcp_server_ids": [off]})
    assert r.status_code == 400
    assert envelope(r)["detail"] == f"Invalid IDs: {off}"
    assert (await stored_chat(db, chat_id))["mcp_server_ids"] == []
    r = await api.request("POST", send, member, json={"content": content, "mcp_server_ids": [good]})
    assert r.status_code == 200, r.text
    assert (await stored_chat(db, chat_id))["mcp_server_ids"] == [good]
