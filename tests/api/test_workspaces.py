"""Workspaces over REST: create from a template, list, get, delete; who sees what; bad input
(templates, parameters, names, clone URLs) changes nothing."""

from __future__ import annotations

import re
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from chatd.settings import Settings
from chatd.store.db import Database
from tests.api.chat_helpers import insert_org, make_org_admin, stored_chat
from tests.api.crosssite_support import snapshot
from tests.helpers import Api, ApiUser, envelope, make_chat, seed_model_config
from tests.workspace.repos import make_repo

pytestmark = pytest.mark.anyio

WORKSPACES = "/api/v2/workspaces"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    # Local agents are started for real (they dial a server that is not listening here).
    return settings.model_copy(update={"workspace_clone_roots": [tmp_path / "repos"]})


def create_url(user: ApiUser, owner: str = "me") -> str:
    return f"/api/v2/organizations/{user.org_id}/members/{owner}/workspaces"


async def template_id(api: Api, user: ApiUser, name: str) -> str:
    r = await api.request("GET", f"/api/v2/organizations/{user.org_id}/templates", user)
    return str({t["name"]: t for t in r.json()}[name]["id"])


async def external_template(api: Api) -> str:
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{api.admin.org_id}/templates",
        api.admin,
        json={"name": "vm", "kind": "external", "parameters": [{"name": "size", "default": "s"}]},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def create(api: Api, user: ApiUser, owner: str = "me", **body: Any) -> dict[str, Any]:
    r = await api.request("POST", create_url(user, owner), user, json=body)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def workspace_dirs(settings: Settings) -> list[Path]:
    root = settings.data_dir / "workspaces"
    return sorted(root.iterdir()) if root.exists() else []


def exists(path: str) -> bool:
    return Path(path).exists()


async def test_an_external_workspace_shows_its_token_once(api: Api, member: ApiUser) -> None:
    template = await external_template(api)
    made = await create(api, member, template_id=template, name="my-vm")
    token = made.pop("agent_token")
    assert token.startswith("chatd-agent-") and len(token) > 40
    assert made["name"] == "my-vm" and made["kind"] == "external"
    assert made["owner_id"] == str(member.id) and made["organization_id"] == str(member.org_id)
    assert made["template_id"] == template and made["template_name"] == "vm"
    assert made["agent"]["status"] == "connecting"
    assert set(made["agent"]) == {"id", "status", "directory", "operating_system", "version"}
    r = await api.request("GET", f"{WORKSPACES}/{made['id']}", member)
    assert r.status_code == 200 and r.json() == made
    r = await api.request("GET", WORKSPACES, member)
    assert r.json() == {"workspaces": [made], "count": 1}
    # The token is not a user's credential.
    r = await api.client.get("/api/v2/users/me", headers={"Coder-Session-Token": token})
    assert r.status_code == 401


async def test_a_scratch_workspace_is_a_private_git_directory(
    api: Api, member: ApiUser, settings: Settings, db: Database
) -> None:
    made = await create(api, member, template_id=await template_id(api, member, "scratch"))
    assert re.fullmatch(r"scratch-[0-9a-f]{4}", made["name"]), made["name"]
    assert "agent_token" not in made and made["kind"] == "local"
    directory = settings.data_dir / "workspaces" / made["id"]
    assert workspace_dirs(settings) == [directory]
    assert (directory / ".git").is_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    chat_id = await make_chat(db, member, await seed_model_config(db))
    r = await api.request(
        "PATCH", f"/api/experimental/chats/{chat_id}", member, json={"workspace_id": made["id"]}
    )
    assert r.status_code == 204, r.text

    r = await api.request("DELETE", f"{WORKSPACES}/{made['id']}", member)
    assert r.status_code == 204, r.text
    assert workspace_dirs(settings) == []
    r = await api.request("GET", f"{WORKSPACES}/{made['id']}", member)
    assert r.status_code == 404
    # The chat stays, without its workspace.
    assert (await stored_chat(db, chat_id))["workspace_id"] is None
    r = await api.request("GET", f"/api/experimental/chats/{chat_id}", member)
    assert r.status_code == 200 and r.json().get("workspace_id") is None


async def test_a_clone_from_inside_the_roots(
    api: Api, member: ApiUser, settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repos" / "project")
    git_template = await template_id(api, member, "git")
    made = await create(
        api,
        member,
        template_id=git_template,
        name="project",
        rich_parameter_values=[{"name": "repo_url", "value": str(repo)}],
    )
    directory = settings.data_dir / "workspaces" / made["id"]
    assert (directory / "README.md").read_text() == "hello\n"
    assert not (directory / "feature.txt").exists()
    branch = await create(
        api,
        member,
        template_id=git_template,
        rich_parameter_values=[
            {"name": "repo_url", "value": f"file://{repo}"},
            {"name": "branch", "value": "feature"},
        ],
    )
    assert re.fullmatch(r"git-[0-9a-f]{4}", branch["name"])
    cloned = settings.data_dir / "workspaces" / branch["id"]
    assert (cloned / "feature.txt").read_text() == "feature\n"


# Representative refusals (tests/workspace/test_provision.py holds the whole policy).
@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/owned",
        "--upload-pack=touch /tmp/owned",
        "http://example.com/repo.git",
        "OUTSIDE",  # a real repository outside the roots
        "LINK",  # a symlink inside the roots to a repository outside them
        "ROOT/../elsewhere/repo",
    ],
)
async def test_refused_clone_urls_leave_nothing(
    api: Api, member: ApiUser, settings: Settings, db: Database, tmp_path: Path, url: str
) -> None:
    outside = make_repo(tmp_path / "elsewhere" / "repo")
    (tmp_path / "repos").mkdir()
    (tmp_path / "repos" / "link").symlink_to(outside)
    url = (
        url.replace("OUTSIDE", str(outside))
        .replace("LINK", str(tmp_path / "repos" / "link"))
        .replace("ROOT", str(tmp_path / "repos"))
    )
    before = await snapshot(db)
    r = await api.request(
        "POST",
        create_url(member),
        member,
        json={
            "template_id": await template_id(api, member, "git"),
            "rich_parameter_values": [{"name": "repo_url", "value": url}],
        },
    )
    assert r.status_code == 400, r.text
    assert envelope(r)["message"]
    assert await snapshot(db) == before
    assert workspace_dirs(settings) == []
    assert not exists("/tmp/owned")


async def test_a_failed_clone_leaves_nothing(
    api: Api, member: ApiUser, settings: Settings, db: Database, tmp_path: Path
) -> None:
    (tmp_path / "repos" / "empty").mkdir(parents=True)  # not a repository
    before = await snapshot(db)
    r = await api.request(
        "POST",
        create_url(member),
        member,
        json={
            "template_id": await template_id(api, member, "git"),
            "rich_parameter_values": [
                {"name": "repo_url", "value": str(tmp_path / "repos" / "empty")}
            ],
        },
    )
    assert r.status_code == 400, r.text
    assert envelope(r)["message"].startswith("Git clone failed")
    assert await snapshot(db) == before
    assert workspace_dirs(settings) == []


async def test_clones_from_paths_need_roots(
    api: Api, member: ApiUser, settings: Settings, tmp_path: Path
) -> None:
    settings.workspace_clone_roots.clear()  # the app's own settings object
    repo = make_repo(tmp_path / "repos" / "project")
    r = await api.request(
        "POST",
        create_url(member),
        member,
        json={
            "template_id": await template_id(api, member, "git"),
            "rich_parameter_values": [{"name": "repo_url", "value": str(repo)}],
        },
    )
    assert r.status_code == 400
    assert "CHATD_WORKSPACE_CLONE_ROOTS" in envelope(r)["message"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "template_id"),
        ({"template_id": "nope"}, 400, None),
        ({"template_id": str(uuid.uuid4())}, 400, "template_id"),
        ({"template_id": "VM", "name": "Has Caps"}, 400, "name"),
        ({"template_id": "VM", "name": "-x"}, 400, "name"),
        ({"template_id": "VM", "name": "x" * 65}, 400, "name"),
        ({"template_id": "VM", "name": "taken"}, 409, "name"),
        (
            {"template_id": "VM", "rich_parameter_values": [{"name": "colour", "value": "red"}]},
            400,
            "parameters",
        ),
        (
            {
                "template_id": "VM",
                "rich_parameter_values": [{"name": "size", "value": "l"}] * 2,
            },
            400,
            "rich_parameter_values.1.name",
        ),
        (
            {"template_id": "VM", "rich_parameter_values": [{"name": "size", "value": 3}]},
            400,
            None,
        ),
        ({"template_id": "GIT"}, 400, "parameters"),
        ({"template_id": "ELSEWHERE"}, 400, "template_id"),
    ],
)
async def test_bad_requests_change_nothing(
    api: Api,
    member: ApiUser,
    db: Database,
    settings: Settings,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    vm = await external_template(api)
    await create(api, member, template_id=vm, name="taken")
    other_org = await insert_org(db, "elsewhere")
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{other_org}/templates",
        api.admin,
        json={"name": "far", "kind": "external"},
    )
    assert r.status_code == 201, r.text
    names = {"VM": vm, "GIT": await template_id(api, member, "git"), "ELSEWHERE": r.json()["id"]}
    if body.get("template_id") in names:
        body = {**body, "template_id": names[body["template_id"]]}
    before = await snapshot(db)
    r = await api.request("POST", create_url(member), member, json=body)
    assert r.status_code == status, r.text
    error = envelope(r)
    if field is not None:
        assert [v["field"] for v in error["validations"]] == [field], error
    assert await snapshot(db) == before
    assert workspace_dirs(settings) == []


@pytest.mark.parametrize("value", ["a\x00b", "two\nlines", "tab\there", "del\x7f", "\x85"])
async def test_control_characters_in_parameters_change_nothing(
    api: Api, member: ApiUser, db: Database, value: str
) -> None:
    """A parameter value becomes a variable in a process's environment: a NUL cannot be
    there (no JSON body takes one), and no other control character is taken either."""
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{api.admin.org_id}/templates",
        api.admin,
        json={"name": "run", "kind": "command", "command": "true", "parameters": [{"name": "p"}]},
    )
    assert r.status_code == 201, r.text
    template = r.json()["id"]
    before = await snapshot(db)
    body = {"template_id": template, "rich_parameter_values": [{"name": "p", "value": value}]}
    r = await api.request("POST", create_url(member), member, json=body)
    assert r.status_code == 400, r.text
    error = envelope(r)
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{api.admin.org_id}/templates",
        api.admin,
        json={"name": "other", "kind": "external", "parameters": [{"name": "p", "default": value}]},
    )
    assert r.status_code == 400, r.text
    if "\x00" not in value:
        assert "control characters" in error["message"]
        assert [v["field"] for v in error["validations"]] == ["parameters"]
        assert [v["field"] for v in envelope(r)["validations"]] == ["parameters.0.default"]
    assert await snapshot(db) == before


async def test_others_workspaces_are_missing(api: Api, member: ApiUser, admin: ApiUser) -> None:
    vm = await external_template(api)
    theirs = await create(api, admin, template_id=vm, name="admins")
    mine = await create(api, member, template_id=vm, name="mine")
    for method in ("GET", "DELETE"):
        r = await api.request(method, f"{WORKSPACES}/{theirs['id']}", member)
        assert r.status_code == 404, (method, r.text)
    r = await api.request("GET", f"{WORKSPACES}/not-a-uuid", member)
    assert r.status_code == 400
    r = await api.request("GET", WORKSPACES, member, params={"q": "owner:admin"})
    assert r.json() == {"workspaces": [], "count": 0}
    r = await api.request("GET", WORKSPACES, member, params={"q": "owner:nobody"})
    assert r.json() == {"workspaces": [], "count": 0}
    # Members create for themselves only; the other user is as missing as one that is not.
    r = await api.request(
        "POST", create_url(member, "admin"), member, json={"template_id": vm, "name": "x"}
    )
    assert r.status_code == 404
    # A site owner sees and manages everyone's.
    r = await api.request("GET", WORKSPACES, admin, params={"q": "owner:member"})
    assert [w["name"] for w in r.json()["workspaces"]] == ["mine"]
    r = await api.request("GET", f"{WORKSPACES}/{mine['id']}", admin)
    assert r.status_code == 200
    r = await api.request("GET", WORKSPACES, admin, params={"q": "owner:me"})
    assert [w["name"] for w in r.json()["workspaces"]] == ["admins"]
    r = await api.request("DELETE", f"{WORKSPACES}/{mine['id']}", admin)
    assert r.status_code == 204
    r = await api.request("GET", WORKSPACES, member)
    assert r.json()["count"] == 0


async def test_admins_create_for_members(
    api: Api, admin: ApiUser, member: ApiUser, db: Database
) -> None:
    vm = await external_template(api)
    made = await create(api, admin, str(member.id), template_id=vm, name="for-you")
    assert made["owner_id"] == str(member.id)
    made = await create(api, admin, "member", template_id=vm, name="by-name")
    assert made["owner_id"] == str(member.id)
    boss = await api.create_user("boss")
    await make_org_admin(db, boss)
    made = await create(api, boss, "member", template_id=vm, name="from-boss")
    assert made["owner_id"] == str(member.id)
    r = await api.request("GET", f"{WORKSPACES}/{made['id']}", boss)
    assert r.status_code == 200
    r = await api.request("GET", WORKSPACES, member)
    assert r.json()["count"] == 3
    r = await api.request(
        "POST", create_url(admin, str(uuid.uuid4())), admin, json={"template_id": vm}
    )
    assert r.status_code == 404


async def test_a_bad_query_is_a_400(api: Api, member: ApiUser) -> None:
    for q in ("name:x", "owner:", "hello"):
        r = await api.request("GET", WORKSPACES, member, params={"q": q})
        assert r.status_code == 400, q
        assert envelope(r)["message"] == "Invalid workspace search query."


async def test_template_deletion_keeps_workspaces(api: Api, admin: ApiUser) -> None:
    vm = await external_template(api)
    made = await create(api, admin, template_id=vm, name="kept")
    r = await api.request("DELETE", f"/api/v2/templates/{vm}", admin)
    assert r.status_code == 204
    r = await api.request("GET", f"{WORKSPACES}/{made['id']}", admin)
    assert r.status_code == 200
    assert "template_id" not in r.json() and r.json()["template_name"] == "vm"
