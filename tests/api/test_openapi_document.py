"""The served OpenAPI document says what the server does: ids, required input, methods."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx2
import pytest

from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

METHODS = ("get", "put", "post", "delete", "patch")
# Documented as GET, as the reference's document does, but served only as WebSockets.
WEBSOCKETS = {"/watch", "/stream", "/stream/desktop", "/stream/git", "/workspaceagents/me/rpc"}
UUID_SCHEMA = {"type": "string", "format": "uuid"}
INT64_SCHEMA = {"type": "integer", "format": "int64"}


@pytest.fixture
async def spec(client: httpx2.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


def path_schemas(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(API, ``{param}`` name) -> its schema, checked to be the same wherever it appears."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        # The cost summary names its user as the /api/v2 routes do ("me", an id or a username).
        api = "v2" if path.startswith(("/api/v2/", "/api/experimental/chats/cost/")) else "chats"
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["in"] != "path":
                    continue
                assert param["required"] is True
                schema = {
                    k: v for k, v in param["schema"].items() if k in ("type", "format", "minimum")
                }
                assert found.setdefault((api, param["name"]), schema) == schema, (path, param)
    return found


async def test_path_ids_are_documented_as_what_the_server_parses(spec: dict[str, Any]) -> None:
    assert path_schemas(spec) == {
        ("chats", "chat"): UUID_SCHEMA,
        ("chats", "file"): UUID_SCHEMA,
        ("chats", "provider_id"): UUID_SCHEMA,
        ("chats", "model_config_id"): UUID_SCHEMA,
        ("chats", "server"): UUID_SCHEMA,  # an MCP server config
        ("chats", "message"): {**INT64_SCHEMA, "minimum": 1},
        ("chats", "queuedMessage"): INT64_SCHEMA,
        ("chats", "user"): UUID_SCHEMA,  # a usage-limit override names a user by id only
        ("v2", "organization"): UUID_SCHEMA,
        ("v2", "template"): UUID_SCHEMA,
        ("v2", "workspace"): UUID_SCHEMA,
        # "me", an id or a username; a key id is a short random string.
        ("v2", "user"): {"type": "string"},
        ("v2", "keyid"): {"type": "string"},
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/experimental/chats/not-a-uuid", 'Invalid UUID "not-a-uuid".'),
        ("/api/experimental/chats/files/not-a-uuid", "Invalid file ID."),
        ("/api/v2/organizations/not-a-uuid", 'Invalid UUID "not-a-uuid".'),
    ],
)
async def test_a_path_id_of_the_wrong_format_is_a_400(
    api: Api, member: ApiUser, url: str, message: str
) -> None:
    r = await api.request("GET", url, member)
    assert r.status_code == 400
    assert envelope(r)["message"] == message


async def test_create_chat_body_requires_organization_and_content(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["CreateChatRequest"]
    assert schema["required"] == ["content", "organization_id"]
    assert schema["properties"]["organization_id"] == {
        "format": "uuid",
        "title": "Organization Id",
        "type": "string",
    }
    assert schema["properties"]["content"]["type"] == "array"
    assert "anyOf" not in schema["properties"]["content"]
    # The rest stay optional and take null, as the server does.
    assert {"type": "null"} in schema["properties"]["workspace_id"]["anyOf"]


async def test_create_chat_without_organization_is_refused(api: Api, member: ApiUser) -> None:
    for body in ({"content": [{"type": "text", "text": "hi"}]}, {"organization_id": None}):
        r = await api.request("POST", "/api/experimental/chats", member, json=body)
        assert r.status_code == 400
        assert envelope(r)["message"] == "organization_id is required."


async def test_upload_organization_is_required(
    spec: dict[str, Any], api: Api, member: ApiUser
) -> None:
    (param,) = spec["paths"]["/api/experimental/chats/files"]["post"]["parameters"]
    assert param == {
        "name": "organization",
        "in": "query",
        "required": True,
        "description": "The organization the file belongs to.",
        "schema": UUID_SCHEMA,
    }
    r = await api.request("POST", "/api/experimental/chats/files", member, content=b"text")
    assert r.status_code == 400
    assert envelope(r)["message"] == "Missing organization query parameter."


def concrete(path: str) -> str:
    """``path`` with each ``{param}`` replaced by a value of the documented kind."""
    values = {"message": "1", "queuedMessage": "1", "user": "me", "keyid": "k"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


def documented_methods(spec: dict[str, Any], url: str) -> set[str]:
    """Every method the document lists for a path template ``url`` matches (``/users/first``
    is also a ``/users/{user}``)."""
    methods: set[str] = set()
    for path, item in spec["paths"].items():
        if any(path.endswith(ws) for ws in WEBSOCKETS):
            continue
        if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)), url):
            methods |= {m.upper() for m in item if m in METHODS}
    return methods


async def test_unsupported_methods_are_405_with_allow(
    spec: dict[str, Any], api: Api, member: ApiUser
) -> None:
    checked = 0
    for path in spec["paths"]:
        if any(path.endswith(ws) for ws in WEBSOCKETS):
            continue
        url = concrete(path)
        documented = documented_methods(spec, url)
        for method in METHODS:
            if method.upper() in documented:
                continue
            r = await api.request(method.upper(), url, member)
            assert r.status_code == 405, (method, url, r.text)
            assert envelope(r) == {"message": "Method not allowed."}
            assert r.headers["allow"] == ", ".join(sorted(documented)), (method, url)
            checked += 1
    assert checked > 100


async def test_answer_schemas_document_their_fields(spec: dict[str, Any]) -> None:
    """Every answer model lists its properties (clients and the web UI are typed from them)."""
    schemas = spec["components"]["schemas"]
    empty = [name for name, schema in schemas.items() if schema == {} and name != "JsonValue"]
    assert empty == []
    user = schemas["User"]
    assert {"id", "username", "email", "roles"} <= set(user["properties"])
    chat = schemas["Chat"]["properties"]
    assert chat["diff_status"] and chat["status"]
