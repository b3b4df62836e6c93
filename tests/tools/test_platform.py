"""list_templates, read_template, create_workspace and start_workspace, on the stand-in
service (the templates and workspaces it knows are the tests' own)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from chatd.sdk.events import ChatWatchEventKind
from chatd.sdk.workspaces import TemplateParameter
from chatd.store.tables import chats
from tests.tools.agents import Template
from tests.tools.conftest import ToolEnv

pytestmark = [pytest.mark.anyio, pytest.mark.agent_kinds("dispatcher")]


def _templates(env: ToolEnv, count: int) -> list[Template]:
    made = [
        Template(f"t{i:02d}", env.owner.org_id, f"Template {i}", f"number {i}")
        for i in range(count)
    ]
    env.service.templates.extend(made)
    return made


async def test_list_templates_pages_and_filters(bare: ToolEnv) -> None:
    _templates(bare, 14)
    bare.service.templates.append(Template("python", bare.owner.org_id, "", "Python 3 with uv"))
    bare.service.templates.append(Template("byo", bare.owner.org_id, kind="external"))
    bare.service.templates.append(Template("theirs", uuid.uuid4()))
    first = await bare.ok("list_templates")
    assert (first["count"], first["page"], first["total_pages"], first["total_count"]) == (
        10,
        1,
        2,
        16,
    )
    names = [t["name"] for t in first["templates"]]
    assert names == sorted(names) and "byo" not in names and "theirs" not in names
    second = await bare.ok("list_templates", page=2)
    assert [t["name"] for t in second["templates"]] == [f"t{i:02d}" for i in range(8, 14)]
    assert second["count"] == 6
    beyond = await bare.ok("list_templates", page=5)
    assert beyond["templates"] == [] and beyond["total_count"] == 16

    python = await bare.ok("list_templates", query="PYTHON uv")
    [entry] = python["templates"]
    assert entry == {
        "id": str(bare.service.templates[-3].id),
        "name": "python",
        "organization_id": str(bare.owner.org_id),
        "description": "Python 3 with uv",
    }
    assert (await bare.ok("list_templates", query="scrtch"))["templates"][0]["name"] == "scratch"
    assert (await bare.ok("list_templates", query="nothing-like-it"))["total_count"] == 0
    assert "at least 1" in await bare.error("list_templates", page=0)


async def test_read_template(bare: ToolEnv) -> None:
    template = Template(
        "git",
        bare.owner.org_id,
        "Git repository",
        "Clones a repository.",
        parameters=[
            TemplateParameter(name="repo_url", description="What to clone.", required=True),
            TemplateParameter(name="branch", default="main"),
        ],
    )
    bare.service.templates.append(template)
    result = await bare.ok("read_template", template_id=str(template.id))
    assert result == {
        "template": {
            "id": str(template.id),
            "name": "git",
            "display_name": "Git repository",
            "description": "Clones a repository.",
        },
        "parameters": [
            {
                "name": "repo_url",
                "type": "string",
                "required": True,
                "description": "What to clone.",
            },
            {"name": "branch", "type": "string", "required": False, "default": "main"},
        ],
    }
    assert await bare.error("read_template") == "template_id is required"
    assert "must be a UUID" in await bare.error("read_template", template_id="nope")
    other = Template("elsewhere", uuid.uuid4())
    bare.service.templates.append(other)
    assert "not found" in await bare.error("read_template", template_id=str(other.id))
    assert "not found" in await bare.error("read_template", template_id=str(uuid.uuid4()))


async def test_create_workspace_binds_it_and_waits_for_the_agent(bare: ToolEnv) -> None:
    template = bare.service.templates[0]
    with bare.hub.owner(bare.owner.id) as watch:
        result = await bare.ok(
            "create_workspace", template_id=str(template.id), name="my-ws", parameters={"k": "v"}
        )
        events = watch.drain()
    [workspace] = bare.service.workspaces.values()
    assert workspace.conn is not None
    assert result == {
        "created": True,
        "workspace_name": "my-ws",
        "build_id": str(workspace.conn.build_id),
        "directory": str(workspace.directory),
    }
    assert bare.service.created == [
        {"template_id": template.id, "name": "my-ws", "parameters": {"k": "v"}}
    ]
    [event] = events
    assert event.kind == ChatWatchEventKind.status_change and event.chat.id == bare.chat_id
    assert event.chat.workspace_id == workspace.id
    async with bare.db.read() as conn:
        row = (await conn.execute(sa.select(chats).where(chats.c.id == bare.chat_id))).one()
    assert (row.workspace_id, row.agent_id, row.build_id) == (
        workspace.id,
        workspace.conn.agent_id,
        workspace.conn.build_id,
    )
    # Later calls of the turn use it.
    listed = await bare.ok("execute", command="pwd")
    assert listed["output"].strip() == str(workspace.directory)

    again = await bare.ok("create_workspace", template_id=str(template.id))
    assert again["created"] is False and again["status"] == "already_exists"
    assert again["workspace_name"] == "my-ws" and "start_workspace" in again["message"]
    assert len(bare.service.workspaces) == 1


async def test_create_workspace_errors(bare: ToolEnv) -> None:
    needs = Template("git", bare.owner.org_id, parameters=[{"name": "repo_url", "required": True}])
    external = Template("byo", bare.owner.org_id, kind="external")
    bare.service.templates += [needs, external]
    assert await bare.error("create_workspace") == "template_id is required"
    assert "not found" in await bare.error("create_workspace", template_id=str(uuid.uuid4()))
    assert "not found" in await bare.error("create_workspace", template_id=str(external.id))
    text = await bare.error("create_workspace", template_id=str(needs.id))
    assert text == "Parameter 'repo_url' is required."
    assert "object of string values" in await bare.error(
        "create_workspace", template_id=str(needs.id), parameters={"repo_url": 5}
    )
    assert bare.service.workspaces == {}
    async with bare.db.read() as conn:
        bound = (
            await conn.execute(sa.select(chats.c.workspace_id).where(chats.c.id == bare.chat_id))
        ).scalar_one()
    assert bound is None


async def test_create_workspace_whose_agent_does_not_come(bare: ToolEnv) -> None:
    original_add = bare.service.add

    async def add_stopped(*args: object) -> object:
        workspace = await original_add(*args)  # type: ignore[arg-type]
        workspace.up.clear()
        return workspace

    bare.service.add = add_stopped  # type: ignore[method-assign]
    turn = bare.new_turn(agent_wait=0.05)
    result = await turn.ok("create_workspace", template_id=str(bare.service.templates[0].id))
    assert result["created"] is True and result["agent_status"] == "not_ready"
    assert "start_workspace" in result["agent_error"]
    [workspace] = bare.service.workspaces.values()
    assert turn.access.workspace_id == workspace.id

    # start_workspace brings it up.
    started = await turn.ok("start_workspace")
    assert started == {
        "started": True,
        "workspace_name": workspace.name,
        "build_id": str(workspace.conn.build_id),  # type: ignore[union-attr]
        "directory": str(workspace.directory),
    }


async def test_start_workspace_without_a_workspace(bare: ToolEnv) -> None:
    assert "create_workspace" in await bare.error("start_workspace")


async def test_start_workspace_of_a_deleted_workspace(env: ToolEnv) -> None:
    assert env.workspace is not None
    await env.service.delete(env.workspace.id)
    assert "was deleted" in await env.error("start_workspace")


async def test_create_and_start_never_run_at_once(bare: ToolEnv) -> None:
    template_id = str(bare.service.templates[0].id)
    results = await asyncio.gather(
        bare.ok("create_workspace", template_id=template_id),
        bare.ok("create_workspace", template_id=template_id),
    )
    assert sorted(r["created"] for r in results) == [False, True]
    assert len(bare.service.workspaces) == 1


async def test_already_exists_says_only_whether_the_agent_is_ready(env: ToolEnv) -> None:
    """agent_status takes the reference's values only: left out for a ready agent."""
    assert env.workspace is not None
    template_id = str(env.service.templates[0].id)
    ready = await env.ok("create_workspace", template_id=template_id)
    assert ready["status"] == "already_exists" and "agent_status" not in ready
    env.service.stop(env.workspace.id)
    stopped = await env.ok("create_workspace", template_id=template_id)
    assert stopped["status"] == "already_exists" and stopped["agent_status"] == "not_ready"
