"""Hostile input is a 4xx with the envelope and changes nothing, on every backend.

Deep JSON, lone UTF-16 surrogates, text no database stores in the URL, over-long searches,
URLs and headers, out-of-range line numbers, and booleans or floats where integers belong.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
import structlog

from chatd.api import json_guard
from chatd.api.middleware import MAX_HEADER_BYTES, MAX_URL_BYTES
from chatd.api.search import MAX_LABEL_FILTERS, MAX_QUERY_CHARS, MAX_VALUE_CHARS
from chatd.store.db import Database
from chatd.store.tables import metadata
from tests.helpers import Api, ApiUser, envelope, make_chat

pytestmark = pytest.mark.anyio

CHATS = "/api/experimental/chats"
BAD_JSON = "Request body must be valid JSON."
# Columns a read may touch (a token's last use); everything else must stay as it was.
VOLATILE = {"last_used", "last_seen_at"}


async def snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as text (a hostile request must leave all of them as they were)."""
    rows: dict[str, list[str]] = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.c if c.name not in VOLATILE]
            result = await conn.execute(sa.select(*columns))
            rows[table.name] = sorted(repr(tuple(r)) for r in result)
    return rows


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


async def send(
    api: Api, method: str, url: str, user: ApiUser | None, body: bytes | str
) -> httpx2.Response:
    headers = {"Content-Type": "application/json", **(user.headers if user else {})}
    return await api.client.request(method, url, content=body, headers=headers)


def assert_refused(r: httpx2.Response, status: int, message: str, detail: str | None) -> None:
    assert r.status_code == status, r.text
    body = envelope(r)
    assert body["message"] == message
    if detail is not None:
        assert body["detail"] == detail


async def json_routes(api: Api, member: ApiUser, db: Database, model_id: uuid.UUID) -> list[Any]:
    """(method, url, user, field) for JSON routes, signed out and signed in."""
    chat_id = await make_chat(db, member, model_id)
    return [
        ("POST", "/api/v2/users/login", None, "email"),
        ("POST", "/api/v2/users/first", None, "email"),
        ("POST", CHATS, member, "content"),
        ("PATCH", f"{CHATS}/{chat_id}", member, "labels"),
        ("POST", f"{CHATS}/{chat_id}/messages", member, "content"),
        ("POST", f"{CHATS}/{chat_id}/tool-results", member, "results"),
        ("POST", "/api/v2/users/me/keys/tokens", member, "token_name"),
        ("POST", f"{CHATS}/providers", api.admin, "api_key"),
        ("PUT", f"{CHATS}/usage-limits", api.admin, "period"),
    ]


async def test_deep_json_is_a_400_on_every_route(
    api: Api, member: ApiUser, db: Database, model_id: uuid.UUID
) -> None:
    routes = await json_routes(api, member, db, model_id)
    before = await snapshot(db)
    with structlog.testing.capture_logs() as logs:
        for method, url, user, field in routes:
            for levels in (json_guard.MAX_DEPTH, 319, 100_000):
                # The field holds ``levels`` arrays inside the body's object.
                body = f'{{"{field}": {nested(levels)}}}'
                r = await send(api, method, url, user, body)
                assert_refused(r, 400, BAD_JSON, json_guard.TOO_DEEP)
    assert await snapshot(db) == before
    assert [e for e in logs if e["log_level"] == "error"] == []


@pytest.mark.usefixtures("model_id")
async def test_nesting_up_to_the_cap_is_taken(api: Api, member: ApiUser) -> None:
    # A tool's input schema is free JSON. The body object, the tool list, the tool and a schema
    # of 61 objects are 64 levels: the most the guard lets through.
    schema: dict[str, Any] = {}
    for _ in range(json_guard.MAX_DEPTH - 4):
        schema = {"properties": schema}
    body = {
        "organization_id": str(member.org_id),
        "content": [{"type": "text", "text": "hi"}],
        "unsafe_dynamic_tools": [{"name": "deep", "input_schema": schema}],
    }
    assert json_guard.problem(body) is None
    assert json_guard.problem({"x": body}) == json_guard.TOO_DEEP
    r = await api.request("POST", CHATS, member, json=body)
    assert r.status_code == 201, r.text


SURROGATE_BODIES = [
    ("POST", "/api/v2/users/login", None, '{"email": "a\\ud800@example.com", "password": "x"}'),
    ("POST", "/api/v2/users/login", None, '{"email": "a@example.com", "password": "\\udfff"}'),
    (
        "POST",
        CHATS,
        "member",
        '{"organization_id": "{org}", "content": [{"type": "text", "text": "fix \\ud800 this"}]}',
    ),
    ("PATCH", "{chat}", "member", '{"title": "t\\ud800"}'),
    ("PATCH", "{chat}", "member", '{"labels": {"k\\udc00": "v"}}'),
    ("PATCH", "{chat}", "member", '{"labels": {"k": "\\udbff"}}'),
    ("POST", "/api/v2/users/me/keys/tokens", "member", '{"token_name": "ci\\ud800"}'),
    ("POST", f"{CHATS}/providers", "admin", '{"provider": "openai", "api_key": "sk-\\ud800"}'),
    (
        "POST",
        "/api/v2/users",
        "admin",
        '{"email": "x@example.com", "username": "x", "password": "p\\ud800ssword"}',
    ),
]


async def test_lone_surrogates_are_a_400_on_every_route(
    api: Api, member: ApiUser, db: Database, model_id: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model_id)
    users = {None: None, "member": member, "admin": api.admin}
    before = await snapshot(db)
    for method, url, who, body in SURROGATE_BODIES:
        url = url.replace("{chat}", f"{CHATS}/{chat_id}")
        text = body.replace("{org}", str(member.org_id))
        r = await send(api, method, url, users[who], text)
        assert_refused(r, 400, BAD_JSON, json_guard.SURROGATE)
        # The same surrogate sent as (invalid) UTF-8 bytes rather than a JSON escape.
        raw = text.encode("utf-8").replace(b"\\ud800", b"\xed\xa0\x80")
        if raw != text.encode("utf-8"):
            r = await send(api, method, url, users[who], raw)
            assert_refused(r, 400, BAD_JSON, json_guard.SURROGATE)
    assert await snapshot(db) == before
    # A surrogate pair is one ordinary character.
    r = await send(api, "PATCH", f"{CHATS}/{chat_id}", member, '{"title": "ok \\ud83d\\ude00"}')
    assert r.status_code == 204, r.text
    r = await api.request("GET", f"{CHATS}/{chat_id}", member)
    assert r.json()["title"] == "ok \U0001f600"


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        (f"{CHATS}?q=title:%ED%A0%80", "The URL's query string must be valid UTF-8."),
        (f"{CHATS}?q=title:%FF", "The URL's query string must be valid UTF-8."),
        (f"{CHATS}?label=k:%00", "NUL characters are not allowed in the URL."),
        ("/api/v2/users/%ED%A0%80", "The URL's path must be valid UTF-8."),
        ("/api/v2/users/a%00b", "NUL characters are not allowed in the URL."),
    ],
)
async def test_url_text_no_database_stores_is_a_400(
    api: Api, member: ApiUser, url: str, detail: str
) -> None:
    r = await api.request("GET", url, member)
    assert_refused(r, 400, "Invalid request.", detail)


async def test_search_lengths_are_capped(
    api: Api, member: ApiUser, db: Database, model_id: uuid.UUID
) -> None:
    await make_chat(db, member, model_id, text="x" * 40)

    async def search(**params: Any) -> httpx2.Response:
        return await api.request("GET", CHATS, member, params=params)

    q = "title:" + "x" * (MAX_QUERY_CHARS - len("title:") + 1)
    r = await search(q=q)
    assert_refused(r, 400, "Invalid chat search query.", None)
    assert envelope(r)["validations"] == [
        {
            "field": "q",
            "detail": f"Query is {len(q)} characters long; at most {MAX_QUERY_CHARS} are allowed",
        }
    ]
    r = await search(q=f'title:"{"x" * (MAX_VALUE_CHARS + 1)}"')
    assert_refused(r, 400, "Invalid chat search query.", None)
    assert envelope(r)["validations"] == [
        {
            "field": "title",
            "detail": (
                f'Query param "title" is {MAX_VALUE_CHARS + 1} characters long; '
                f"at most {MAX_VALUE_CHARS} are allowed"
            ),
        }
    ]
    # At the caps, the longest patterns run on both databases.
    for key in ("title", "pr_title", "repo"):
        r = await search(q=f"{key}:{'x' * MAX_VALUE_CHARS}")
        assert r.status_code == 200, r.text
        assert r.json() == []
    r = await search(q="title:" + "x" * 40)
    assert [c["title"] for c in r.json()] == ["x" * 40]

    labels = [f"k{i}:v" for i in range(MAX_LABEL_FILTERS + 1)]
    r = await search(label=labels)
    assert_refused(
        r,
        400,
        f"Too many label filters: {len(labels)} (at most {MAX_LABEL_FILTERS} are allowed)",
        None,
    )
    r = await search(label=labels[:-1])
    assert r.status_code == 200 and r.json() == []

    # 50,000 characters: longer than any URL the server takes.
    r = await search(q="title:" + "x" * 50_000)
    assert_refused(r, 414, "Request URL is too long.", None)


async def test_url_and_header_sizes_are_capped(api: Api, member: ApiUser) -> None:
    base = f"{CHATS}?q=title:"
    # The path and the query string, without the "?", are what is counted.
    at_cap = base + "x" * (MAX_URL_BYTES - len(base) + 1)
    r = await api.request("GET", at_cap + "x", member)
    assert_refused(
        r,
        414,
        "Request URL is too long.",
        f"The path and query string may hold at most {MAX_URL_BYTES} bytes.",
    )
    r = await api.request("GET", at_cap, member)
    assert r.status_code == 400  # through to the search's own length check
    assert envelope(r)["message"] == "Invalid chat search query."

    big = {"X-Padding": "x" * MAX_HEADER_BYTES}
    r = await api.client.get(f"{CHATS}", headers={**member.headers, **big})
    assert_refused(
        r,
        431,
        "Request headers are too large.",
        f"The request headers may hold at most {MAX_HEADER_BYTES} bytes in all.",
    )


def reference_part(**lines: Any) -> dict[str, Any]:
    return {"type": "file-reference", "file_name": "main.go", "content": "x", **lines}


@pytest.mark.parametrize(
    ("lines", "field", "detail"),
    [
        ({"start_line": -5}, "content.0.start_line", "Input should be greater than or equal to 0"),
        ({"end_line": -1}, "content.0.end_line", "Input should be greater than or equal to 0"),
        (
            {"end_line": 2**63},
            "content.0.end_line",
            "Input should be less than or equal to 2147483647",
        ),
        (
            {"start_line": 2**31},
            "content.0.start_line",
            "Input should be less than or equal to 2147483647",
        ),
        ({"start_line": True}, "content.0.start_line", "Input should be a valid integer"),
        ({"start_line": 3.0}, "content.0.start_line", "Input should be a valid integer"),
        ({"end_line": "7"}, "content.0.end_line", "Input should be a valid integer"),
    ],
)
async def test_file_reference_lines_are_checked(
    api: Api,
    member: ApiUser,
    db: Database,
    model_id: uuid.UUID,
    lines: dict[str, Any],
    field: str,
    detail: str,
) -> None:
    chat_id = await make_chat(db, member, model_id)
    before = await snapshot(db)
    create = {"organization_id": str(member.org_id), "content": [reference_part(**lines)]}
    send_body = {"content": [reference_part(**lines)]}
    for url, body in ((CHATS, create), (f"{CHATS}/{chat_id}/messages", send_body)):
        r = await api.request("POST", url, member, json=body)
        assert_refused(r, 400, BAD_JSON, detail)
        assert envelope(r)["validations"] == [{"field": field, "detail": detail}]
    assert await snapshot(db) == before


@pytest.mark.usefixtures("model_id")
async def test_file_reference_lines_must_be_in_order(
    api: Api, member: ApiUser, db: Database
) -> None:
    before = await snapshot(db)
    body = {
        "organization_id": str(member.org_id),
        "content": [{"type": "text", "text": "see"}, reference_part(start_line=9, end_line=3)],
    }
    r = await api.request("POST", CHATS, member, json=body)
    detail = "content[1].end_line must not be less than content[1].start_line."
    assert_refused(r, 400, "Invalid input part.", detail)
    assert envelope(r)["validations"] == [{"field": "content[1].end_line", "detail": detail}]
    assert await snapshot(db) == before

    body["content"] = [reference_part(start_line=3, end_line=9)]
    r = await api.request("POST", CHATS, member, json=body)
    assert r.status_code == 201, r.text
    r = await api.request("GET", f"{CHATS}/{r.json()['id']}/messages", member)
    (part,) = r.json()["messages"][-1]["content"]
    assert (part["start_line"], part["end_line"]) == (3, 9)


async def test_integers_take_no_booleans_floats_or_strings(
    api: Api, member: ApiUser, db: Database, model_id: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model_id)
    chat = f"{CHATS}/{chat_id}"
    cases: list[tuple[str, str, ApiUser, dict[str, Any], str]] = [
        ("PATCH", chat, member, {"pin_order": False}, "pin_order"),
        ("PATCH", chat, member, {"pin_order": True}, "pin_order"),
        ("PATCH", chat, member, {"pin_order": 1.0}, "pin_order"),
        ("PATCH", chat, member, {"pin_order": "1"}, "pin_order"),
        ("PATCH", chat, member, {"archived": 1}, "archived"),
        ("PATCH", chat, member, {"archived": "true"}, "archived"),
        ("POST", "/api/v2/users/me/keys/tokens", member, {"lifetime": True}, "lifetime"),
        ("PUT", f"{CHATS}/usage-limits", api.admin, {"spend_limit_micros": False}, ""),
        (
            "POST",
            f"{CHATS}/model-configs",
            api.admin,
            {"provider": "openai", "model": "m", "context_limit": True},
            "context_limit",
        ),
        (
            "POST",
            f"{CHATS}/model-configs",
            api.admin,
            {
                "provider": "openai",
                "model": "m",
                "context_limit": 9,
                "model_config": {"top_k": 1.5},
            },
            "model_config.top_k",
        ),
        (
            "POST",
            f"{CHATS}/providers",
            api.admin,
            {"provider": "openai", "enabled": "yes"},
            "enabled",
        ),
        (
            "POST",
            f"{chat}/tool-results",
            member,
            {"results": [{"tool_call_id": "c", "is_error": 1}]},
            "results.0.is_error",
        ),
    ]
    before = await snapshot(db)
    for method, url, user, body, field in cases:
        r = await api.request(method, url, user, json=body)
        assert_refused(r, 400, BAD_JSON, None)
        fields = [v["field"] for v in envelope(r)["validations"]]
        assert fields == [field or next(iter(body))], (body, fields)
    assert await snapshot(db) == before
    r = await api.request("PATCH", chat, member, json={"pin_order": 1})
    assert r.status_code == 204, r.text
    r = await api.request("GET", chat, member)
    assert r.json()["pin_order"] == 1
