"""Workspace templates: the built-ins on a fresh server, admins' changes, members refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chatd.store.db import Database
from tests.api.chat_helpers import insert_org, make_org_admin
from tests.api.crosssite_support import snapshot
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio


def templates_url(user: ApiUser) -> str:
    return f"/api/v2/organizations/{user.org_id}/templates"


async def create(api: Api, user: ApiUser, **body: Any) -> dict[str, Any]:
    r = await api.request("POST", templates_url(user), user, json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def listed(api: Api, user: ApiUser) -> dict[str, dict[str, Any]]:
    r = await api.request("GET", templates_url(user), user)
    assert r.status_code == 200, r.text
    return {t["name"]: t for t in r.json()}


async def test_a_fresh_server_has_the_builtins(api: Api, member: ApiUser) -> None:
    templates = await listed(api, member)
    assert sorted(templates) == ["git", "scratch"]
    scratch, git = templates["scratch"], templates["git"]
    assert scratch["kind"] == "local" and scratch["builtin"] is True
    assert scratch["parameters"] == []
    assert git["parameters"] == [
        {
            "name": "repo_url",
            "description": "The repository to clone (https, ssh or git URL).",
            "required": True,
            "default": "",
        },
        {
            "name": "branch",
            "description": "The branch to check out (default: the repository's own).",
            "required": False,
            "default": "",
        },
    ]
    assert git["organization_id"] == str(member.org_id)
    r = await api.request("GET", f"/api/v2/templates/{git['id']}", member)
    assert r.status_code == 200 and r.json() == git


async def test_builtins_are_ensured_once(api: Api, admin: ApiUser, db: Database) -> None:
    from chatd.store.templates import ensure_builtin_templates

    async with db.write() as conn:
        assert await ensure_builtin_templates(conn, db.now()) == 0
    assert sorted(await listed(api, admin)) == ["git", "scratch"]


async def test_admin_creates_changes_and_deletes(api: Api, admin: ApiUser, member: ApiUser) -> None:
    made = await create(
        api,
        admin,
        name="docker",
        display_name="Docker",
        description="A container",
        kind="command",
        command="docker run --rm -i chatd chatd agent",
        parameters=[{"name": "image", "required": True}, {"name": "tag", "default": "latest"}],
    )
    assert made["kind"] == "command" and made["builtin"] is False
    assert made["command"] == "docker run --rm -i chatd chatd agent"
    assert made["parameters"] == [
        {"name": "image", "description": "", "required": True, "default": ""},
        {"name": "tag", "description": "", "required": False, "default": "latest"},
    ]
    # Members see the template, not its command.
    seen = (await listed(api, member))["docker"]
    assert "command" not in seen and seen["id"] == made["id"]

    url = f"/api/v2/templates/{made['id']}"
    r = await api.request(
        "PATCH", url, admin, json={"display_name": "Container", "command": "podman run x"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Container" and r.json()["command"] == "podman run x"
    assert r.json()["description"] == "A container"

    r = await api.request("DELETE", url, admin)
    assert r.status_code == 204
    r = await api.request("GET", url, admin)
    assert r.status_code == 404
    assert sorted(await listed(api, admin)) == ["git", "scratch"]


async def test_an_external_template(api: Api, admin: ApiUser) -> None:
    made = await create(api, admin, name="my-vm", kind="external")
    assert made["kind"] == "external" and made["parameters"] == []
    assert "command" not in made


async def test_an_org_admin_manages_templates(api: Api, db: Database) -> None:
    boss = await api.create_user("boss")
    await make_org_admin(db, boss)  # the roles are read on each request
    made = await create(api, boss, name="vm", kind="external")
    assert made["name"] == "vm"


async def test_only_site_owners_set_commands(api: Api, admin: ApiUser, db: Database) -> None:
    """A command runs on the server's host: an organization's admin may neither add a
    command template nor change a command; everything else of it is theirs to manage."""
    boss = await api.create_user("boss")
    await make_org_admin(db, boss)
    before = await snapshot(db)
    r = await api.request(
        "POST", templates_url(boss), boss, json={"name": "run", "kind": "command", "command": "id"}
    )
    assert r.status_code == 403, r.text
    assert "site owners" in envelope(r)["message"]
    assert await snapshot(db) == before
    made = await create(api, admin, name="run", kind="command", command="true")
    url = f"/api/v2/templates/{made['id']}"
    before = await snapshot(db)
    r = await api.request("PATCH", url, boss, json={"command": "id > /tmp/owned"})
    assert r.status_code == 403, r.text
    envelope(r)
    r = await api.request("PATCH", url, boss, json={"display_name": "Run", "command": "id"})
    assert r.status_code == 403, r.text
    assert await snapshot(db) == before
    r = await api.request("GET", url, boss)
    assert r.json()["command"] == "true"
    r = await api.request("PATCH", url, boss, json={"display_name": "Run it"})
    assert r.status_code == 200, r.text
    assert r.json()["display_name"] == "Run it" and r.json()["command"] == "true"
    r = await api.request("PATCH", url, admin, json={"command": "exec true"})
    assert r.status_code == 200 and r.json()["command"] == "exec true"
    r = await api.request("DELETE", url, boss)
    assert r.status_code == 204


async def test_members_are_refused(api: Api, admin: ApiUser, member: ApiUser, db: Database) -> None:
    made = await create(api, admin, name="vm", kind="external")
    before = await snapshot(db)
    r = await api.request(
        "POST", templates_url(member), member, json={"name": "x", "kind": "external"}
    )
    assert r.status_code == 403, r.text
    url = f"/api/v2/templates/{made['id']}"
    r = await api.request("PATCH", url, member, json={"display_name": "mine"})
    assert r.status_code == 403
    r = await api.request("DELETE", url, member)
    assert r.status_code == 403
    assert await snapshot(db) == before


async def test_other_organizations_are_missing(api: Api, member: ApiUser, db: Database) -> None:
    elsewhere = await insert_org(db, "elsewhere")
    r = await api.request("GET", f"/api/v2/organizations/{elsewhere}/templates", member)
    assert r.status_code == 404
    r = await api.request("GET", f"/api/v2/organizations/{uuid.uuid4()}/templates", member)
    assert r.status_code == 404
    r = await api.request("GET", "/api/v2/organizations/nope/templates", member)
    assert r.status_code == 400
    r = await api.request("GET", f"/api/v2/templates/{uuid.uuid4()}", member)
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "Bad Name", "kind": "external"}, 400, "name"),
        ({"name": "", "kind": "external"}, 400, "name"),
        ({"name": "-dash", "kind": "external"}, 400, "name"),
        ({"name": "x" * 65, "kind": "external"}, 400, "name"),
        ({"name": "ok", "kind": "local"}, 400, "kind"),
        ({"name": "ok", "kind": "nope"}, 400, "kind"),
        ({"name": "ok", "kind": "command"}, 400, "command"),
        ({"name": "ok", "kind": "command", "command": "  "}, 400, "command"),
        ({"name": "ok", "kind": "external", "parameters": [{"name": "A"}]}, 400, None),
        (
            {"name": "ok", "kind": "external", "parameters": [{"name": "a"}, {"name": "a"}]},
            400,
            None,
        ),
        (
            {"name": "ok", "kind": "external", "parameters": [{"name": "a", "required": 1}]},
            400,
            None,
        ),
        ({"name": "scratch", "kind": "external"}, 409, None),
    ],
)
async def test_bad_templates_change_nothing(
    api: Api, admin: ApiUser, db: Database, body: dict[str, Any], status: int, field: str | None
) -> None:
    before = await snapshot(db)
    r = await api.request("POST", templates_url(admin), admin, json=body)
    assert r.status_code == status, r.text
    error = envelope(r)
    if field is not None:
        assert [v["field"] for v in error["validations"]] == [field]
    assert await snapshot(db) == before


async def test_builtins_keep_their_shape(api: Api, admin: ApiUser, db: Database) -> None:
    scratch = (await listed(api, admin))["scratch"]
    url = f"/api/v2/templates/{scratch['id']}"
    for body in ({"name": "blank"}, {"parameters": []}, {"command": "true"}):
        r = await api.request("PATCH", url, admin, json=body)
        assert r.status_code == 400, r.text
    r = await api.request("DELETE", url, admin)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Built-in templates cannot be deleted."
    r = await api.request("PATCH", url, admin, json={"description": "Start from nothing."})
    assert r.status_code == 200
    assert r.json()["description"] == "Start from nothing." and r.json()["name"] == "scratch"


async def test_renaming_onto_another_name_is_a_conflict(api: Api, admin: ApiUser) -> None:
    made = await create(api, admin, name="vm", kind="external")
    r = await api.request("PATCH", f"/api/v2/templates/{made['id']}", admin, json={"name": "git"})
    assert r.status_code == 409
    r = await api.request(
        "PATCH", f"/api/v2/templates/{made['id']}", admin, json={"command": "true"}
    )
    assert r.status_code == 400  # an external template takes no command


async def test_template_changes_are_audited(api: Api, admin: ApiUser) -> None:
    made = await create(api, admin, name="vm", kind="external")
    await api.request("DELETE", f"/api/v2/templates/{made['id']}", admin)
    r = await api.request("GET", "/api/v2/audit", admin)
    assert r.status_code == 200, r.text
    actions = [(e["action"], e["resource_target"]) for e in r.json()["audit_logs"]]
    assert ("create", "vm") in actions and ("delete", "vm") in actions
