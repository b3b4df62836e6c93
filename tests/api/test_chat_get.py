"""GET /api/experimental/chats/{chat} and .../diff, and who may read or update a chat."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chatd.store.db import Database
from tests.api.chat_helpers import (
    StepClock,
    add_to_org,
    insert_diff_status,
    insert_org,
    make_child,
    make_org_admin,
    set_chat_columns,
)
from tests.api.chat_requests import (
    NOT_FOUND,
    URL,
    get,
    patch,
)
from tests.helpers import Api, ApiUser, envelope, make_chat

pytestmark = pytest.mark.anyio


async def test_get_root_with_children_and_diff_status(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    root = await make_chat(db, member, model_id, "root")
    chat = await get(api, member, root)
    assert "diff_status" not in chat
    assert "files" not in chat
    assert chat["children"] == []
    assert chat["has_unread"] is False

    clock.advance()
    child = await make_child(db, member, model_id, root, title="live child")
    clock.advance()
    archived_child = await make_child(db, member, model_id, root, title="old child")
    await set_chat_columns(db, archived_child, archived=True)
    await insert_diff_status(
        db, root, url="https://github.com/acme/app/pull/7", pull_request_state="open", additions=3
    )

    chat = await get(api, member, root)
    assert chat["diff_status"]["chat_id"] == str(root)
    assert chat["diff_status"]["url"] == "https://github.com/acme/app/pull/7"
    assert chat["diff_status"]["pull_request_state"] == "open"
    assert chat["diff_status"]["additions"] == 3
    assert "stale_at" in chat["diff_status"]
    # Only children with the parent's archived value; each with the empty diff status.
    assert [c["id"] for c in chat["children"]] == [str(child)]
    kid = chat["children"][0]
    assert kid["parent_chat_id"] == str(root)
    assert kid["root_chat_id"] == str(root)
    assert kid["children"] == []
    assert kid["has_unread"] is False
    assert kid["diff_status"] == {
        "chat_id": str(child),
        "pull_request_title": "",
        "pull_request_draft": False,
        "changes_requested": False,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }

    await set_chat_columns(db, root, archived=True)
    chat = await get(api, member, root)
    assert [c["id"] for c in chat["children"]] == [str(archived_child)]

    child_view = await get(api, member, child)
    assert child_view["parent_chat_id"] == str(root)
    assert child_view["root_chat_id"] == str(root)
    assert child_view["children"] == []
    assert "diff_status" not in child_view


async def test_who_may_read_and_update(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    chat_id = await make_chat(db, member, model_id)
    other = await api.create_user("other")
    for method, path, payload in [
        ("GET", f"{URL}/{chat_id}", None),
        ("PATCH", f"{URL}/{chat_id}", {"title": "mine now"}),
        ("GET", f"{URL}/{chat_id}/diff", None),
    ]:
        r = await api.request(method, path, other, json=payload)
        assert r.status_code == 404, (method, path)
        assert envelope(r) == {"message": NOT_FOUND}

    # A site owner reads every chat but may not change it.
    assert (await get(api, api.admin, chat_id))["id"] == str(chat_id)
    r = await api.request("GET", f"{URL}/{chat_id}/diff", api.admin)
    assert r.status_code == 200
    r = await patch(api, api.admin, chat_id, {"title": "admin was here"})
    assert r.status_code == 404
    assert envelope(r)["message"] == NOT_FOUND

    # An org admin reads the chats of their org, and no others.
    await make_org_admin(db, other)
    assert (await get(api, other, chat_id))["id"] == str(chat_id)
    assert (await patch(api, other, chat_id, {"title": "x"})).status_code == 404
    elsewhere = await insert_org(db, "elsewhere")
    third = await api.create_user("third")
    await add_to_org(db, third, elsewhere, admin=True)
    r = await api.request("GET", f"{URL}/{chat_id}", third)
    assert r.status_code == 404
    assert (await get(api, member, chat_id))["title"] == "hello there"


async def test_bad_and_unknown_ids(api: Api, member: ApiUser) -> None:
    r = await api.request("GET", f"{URL}/not-a-uuid", member)
    assert r.status_code == 400
    assert envelope(r)["message"] == 'Invalid UUID "not-a-uuid".'
    for method in ("GET", "PATCH"):
        r = await api.request(method, f"{URL}/{uuid.uuid4()}", member, json={})
        assert r.status_code == 404
        assert envelope(r)["message"] == NOT_FOUND


async def test_diff_from_the_stored_status(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    plain, branch, pull, other = [await make_chat(db, member, model_id, t) for t in "abcd"]

    async def diff(chat_id: uuid.UUID) -> dict[str, Any]:
        r = await api.request("GET", f"{URL}/{chat_id}/diff", member)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    assert await diff(plain) == {"chat_id": str(plain)}

    await insert_diff_status(
        db,
        branch,
        url=" https://github.com/acme/app/pull/9 ",
        git_branch="feature/x",
        git_remote_origin="git@github.com:acme/app.git",
    )
    assert await diff(branch) == {
        "chat_id": str(branch),
        "provider": "github",
        "remote_origin": "https://github.com/acme/app",
        "branch": "feature/x",
        "pull_request_url": "https://github.com/acme/app/pull/9",
    }

    await insert_diff_status(db, pull, url="https://github.com/acme/app/pull/3")
    assert await diff(pull) == {
        "chat_id": str(pull),
        "provider": "github",
        "pull_request_url": "https://github.com/acme/app/pull/3",
    }

    await insert_diff_status(
        db, other, git_branch="main", git_remote_origin="https://git.example.com/acme/app.git"
    )
    assert await diff(other) == {"chat_id": str(other)}
