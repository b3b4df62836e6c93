"""POST /api/experimental/chats: every validation rule, in the reference's order."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chatd.store.db import Database
from chatd.store.tables import chat_model_configs
from tests.api.chat_helpers import (
    add_to_org,
    insert_file,
    insert_org,
    insert_workspace,
)
from tests.api.chat_requests import (
    NIL,
    body,
    count_chats,
    create,
    expect_400,
)
from tests.helpers import JSON_HEADERS, Api, ApiUser, envelope, seed_model_config

pytestmark = pytest.mark.anyio


async def test_malformed_bodies(api: Api, member: ApiUser, model_id: uuid.UUID) -> None:
    r = await create(api, member, content=b"{not json", headers=JSON_HEADERS)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."

    r = await create(api, member, json={"organization_id": str(member.org_id), "content": "x"})
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."

    r = await create(api, member, json={"organization_id": "not-a-uuid"})
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."

    r = await create(api, member, json=body(member, "x" * 262_144))
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."


async def test_organization_rules(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    # The organization is checked before anything else in the body.
    await expect_400(api, member, {"content": []}, "organization_id is required.")
    await expect_400(
        api, member, {"organization_id": NIL, "content": []}, "organization_id is required."
    )
    other_org = await insert_org(db, "elsewhere")
    r = await create(api, member, json={"organization_id": str(other_org), "content": []})
    assert r.status_code == 403
    assert envelope(r)["message"] == "You are not a member of the specified organization."
    # Not even a site owner may create a chat in an organization they are not part of.
    r = await create(api, api.admin, json={"organization_id": str(other_org), "content": []})
    assert r.status_code == 403

    await add_to_org(db, member, other_org)
    r = await create(api, member, json={**body(member), "organization_id": str(other_org)})
    assert r.status_code == 201, r.text
    assert r.json()["organization_id"] == str(other_org)


async def test_system_prompt_length(api: Api, member: ApiUser, model_id: uuid.UUID) -> None:
    await expect_400(
        api,
        member,
        body(member, system_prompt="é" * 5001, content=[]),
        "System prompt exceeds maximum length.",
        "System prompt must be at most 10000 characters, got 10002.",
    )
    r = await create(api, member, json=body(member, system_prompt="a" * 10_000))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("content", "message", "detail"),
    [
        ([], "Content is required.", "Content cannot be empty."),
        (None, "Content is required.", "Content cannot be empty."),
        (
            [{"type": "text", "text": "  "}],
            "Invalid input part.",
            "content[0].text cannot be empty.",
        ),
        (
            [{"type": "text", "text": "ok"}, {"type": "file"}],
            "Invalid input part.",
            "content[1].file_id is required for file parts.",
        ),
        (
            [{"type": "file", "file_id": NIL}],
            "Invalid input part.",
            "content[0].file_id is required for file parts.",
        ),
        (
            [{"type": "file", "file_id": str(uuid.UUID(int=7))}],
            "Invalid input part.",
            "content[0].file_id references a file that does not exist.",
        ),
        (
            [{"type": "file-reference", "file_name": ""}],
            "Invalid input part.",
            "content[0].file_name cannot be empty for file-reference.",
        ),
        (
            [{"type": "Image"}],
            "Invalid input part.",
            'content[0].type "Image" is not supported.',
        ),
    ],
)
async def test_content_rules(
    api: Api,
    member: ApiUser,
    model_id: uuid.UUID,
    db: Database,
    content: Any,
    message: str,
    detail: str,
) -> None:
    # Content comes before the workspace check.
    payload = body(member, workspace_id=str(uuid.uuid4()))
    payload["content"] = content
    await expect_400(api, member, payload, message, detail)
    assert await count_chats(db) == 0


async def test_another_users_file_does_not_exist(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    other = await api.create_user("other")
    file_id = await insert_file(db, other)
    payload = body(member)
    payload["content"] = [{"type": "file", "file_id": str(file_id)}]
    await expect_400(
        api,
        member,
        payload,
        "Invalid input part.",
        "content[0].file_id references a file that does not exist.",
    )


async def test_workspace_rules(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    not_found = "Workspace not found or you do not have access to this resource"
    # The workspace is checked before the model config.
    await expect_400(
        api,
        member,
        body(member, workspace_id=str(uuid.uuid4()), model_config_id=NIL),
        not_found,
    )
    other = await api.create_user("other")
    theirs = await insert_workspace(db, other.id, other.org_id)
    await expect_400(api, member, body(member, workspace_id=str(theirs)), not_found)

    other_org = await insert_org(db, "elsewhere")
    await add_to_org(db, member, other_org)
    elsewhere = await insert_workspace(db, member.id, other_org)
    await expect_400(
        api,
        member,
        body(member, workspace_id=str(elsewhere)),
        "Workspace does not belong to the specified organization.",
    )
    # A site owner may bind any user's workspace.
    r = await create(api, api.admin, json=body(api.admin, workspace_id=str(theirs)))
    assert r.status_code == 201, r.text


async def test_model_config_rules(api: Api, member: ApiUser, db: Database) -> None:
    # Without a default config, a create that names none fails; plan_mode is checked later.
    await expect_400(
        api, member, body(member, plan_mode="bogus"), "No default chat model config is configured."
    )
    await expect_400(api, member, body(member, model_config_id=NIL), "Invalid model config ID.")
    err = await expect_400(
        api, member, body(member, model_config_id=str(uuid.uuid4())), "Invalid model config ID."
    )
    assert "detail" in err

    model_id = await seed_model_config(db, is_default=False)
    async with db.write() as conn:
        await conn.execute(
            chat_model_configs.update()
            .where(chat_model_configs.c.id == model_id)
            .values(deleted=True)
        )
    await expect_400(
        api, member, body(member, model_config_id=str(model_id)), "Invalid model config ID."
    )
    assert await count_chats(db) == 0


async def test_later_rules_in_order(api: Api, member: ApiUser, model_id: uuid.UUID) -> None:
    bad_labels = {"": "x"}
    too_many_tools = [{"name": f"t{i}"} for i in range(251)]
    await expect_400(
        api,
        member,
        body(
            member,
            plan_mode="bogus",
            mcp_server_ids=[str(uuid.UUID(int=1))],
            labels=bad_labels,
            unsafe_dynamic_tools=too_many_tools,
            client_type="cli",
        ),
        "Invalid plan_mode value.",
    )
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    await expect_400(
        api,
        member,
        body(
            member,
            mcp_server_ids=[str(a), str(b)],
            labels=bad_labels,
            unsafe_dynamic_tools=too_many_tools,
            client_type="cli",
        ),
        "One or more MCP server IDs are invalid.",
        f"Invalid IDs: {a}, {b}",
    )
    await expect_400(
        api,
        member,
        body(member, labels=bad_labels, unsafe_dynamic_tools=too_many_tools, client_type="cli"),
        "Invalid labels.",
    )
    await expect_400(
        api,
        member,
        body(member, unsafe_dynamic_tools=too_many_tools, client_type="cli"),
        "Too many dynamic tools.",
        "Maximum 250 dynamic tools per chat.",
    )
    await expect_400(
        api,
        member,
        body(member, client_type="cli"),
        "Invalid client_type.",
        'got "cli", want one of [ui api]',
    )


async def test_label_rules(api: Api, member: ApiUser, model_id: uuid.UUID) -> None:
    labels = {
        "": "x",
        "k" * 65: "v",
        "-bad": "v",
        "empty": "",
        "long": "v" * 257,
    }
    err = await expect_400(api, member, body(member, labels=labels), "Invalid labels.")
    assert err["validations"] == [
        {"field": "labels", "detail": "label key must not be empty"},
        {"field": "labels", "detail": f'label key "{"k" * 65}" exceeds maximum length of 64 bytes'},
        {
            "field": "labels",
            "detail": 'label key "-bad" contains invalid characters; '
            "must match ^[a-zA-Z0-9][a-zA-Z0-9._/-]*$",
        },
        {"field": "labels", "detail": 'label value for key "empty" must not be empty'},
        {
            "field": "labels",
            "detail": 'label value for key "long" exceeds maximum length of 256 bytes',
        },
    ]
    many = {f"k{i}": "v" for i in range(51)}
    err = await expect_400(api, member, body(member, labels=many), "Invalid labels.")
    assert err["validations"] == [
        {"field": "labels", "detail": "too many labels (51); maximum is 50"}
    ]
    r = await create(api, member, json=body(member, labels=None))
    assert r.status_code == 201
    assert r.json()["labels"] == {}


async def test_dynamic_tool_rules(api: Api, member: ApiUser, model_id: uuid.UUID) -> None:
    await expect_400(
        api,
        member,
        body(member, unsafe_dynamic_tools=[{"name": "a"}, {"name": ""}]),
        "Dynamic tool name must not be empty.",
    )
    await expect_400(
        api,
        member,
        body(member, unsafe_dynamic_tools=[{"name": "a"}, {"name": "b"}, {"name": "a"}]),
        "Duplicate dynamic tool name.",
        'Tool "a" appears more than once.',
    )
    r = await create(
        api, member, json=body(member, unsafe_dynamic_tools=[{"name": f"t{i}"} for i in range(250)])
    )
    assert r.status_code == 201, r.text


async def test_client_type_and_plan_mode_defaults(
    api: Api, member: ApiUser, model_id: uuid.UUID
) -> None:
    r = await create(api, member, json=body(member, client_type="", plan_mode=""))
    assert r.status_code == 201, r.text
    assert r.json()["client_type"] == "api"
    assert "plan_mode" not in r.json()
