"""The Workspaces service as tools use it: what start and connection say when an agent cannot
be had."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from chatd.workspace.conn import AgentUnavailable
from chatd.workspace.launcher import AgentSpec, Launcher
from chatd.workspace.sandbox import Sandbox
from chatd.workspace.service import WorkspaceInputError, Workspaces
from tests.helpers import Api, ApiUser
from tests.workspace.support import wait_until

pytestmark = pytest.mark.anyio


async def test_a_command_workspace_whose_template_is_gone(
    app: FastAPI, api: Api, admin: ApiUser
) -> None:
    service: Workspaces = app.state.workspaces
    service.launcher.stop_grace = 0.1  # the command does not read its stdin
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{admin.org_id}/templates",
        admin,
        json={"name": "idle", "kind": "command", "command": "exec sleep 600"},
    )
    assert r.status_code == 201, r.text
    template = r.json()["id"]
    created = await service.create(
        owner_id=admin.id,
        organization_id=admin.org_id,
        template_id=uuid.UUID(template),
        name="idle",
        parameters={},
    )
    key = created.workspace.id
    assert created.agent_token is None and service.launcher.running(key)
    with pytest.raises(AgentUnavailable) as waited:
        await service.connection(key, wait=0.05)
    assert waited.value.message.startswith("the workspace agent did not connect within 0.05")
    assert waited.value.message.endswith("call start_workspace to start it")

    await service.launcher.stop(key)
    r = await api.request("DELETE", f"/api/v2/templates/{template}", admin)
    assert r.status_code == 204
    with pytest.raises(WorkspaceInputError, match="template was deleted"):
        await service.start(key)
    with pytest.raises(AgentUnavailable, match="template was deleted"):
        await service.connection(key, wait=0.05)
    with pytest.raises(WorkspaceInputError, match="does not exist"):
        await service.start(uuid.uuid4())
    with pytest.raises(AgentUnavailable, match="no longer exists"):
        await service.connection(uuid.uuid4(), wait=0.05)


async def test_a_nul_in_a_parameter_is_refused(app: FastAPI, api: Api, admin: ApiUser) -> None:
    """What a tool passes (a REST body cannot hold a NUL) is checked like the REST input."""
    service: Workspaces = app.state.workspaces
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{admin.org_id}/templates",
        admin,
        json={"name": "run", "kind": "command", "command": "true", "parameters": [{"name": "p"}]},
    )
    assert r.status_code == 201, r.text
    for value in ("a\x00b", "\ud800"):
        with pytest.raises(WorkspaceInputError, match="control characters") as refused:
            await service.create(
                owner_id=admin.id,
                organization_id=admin.org_id,
                template_id=uuid.UUID(r.json()["id"]),
                name="run",
                parameters={"p": value},
            )
        assert refused.value.field == "parameters"
    assert await service.list_owned(admin.id) == []


async def test_a_process_that_cannot_start_is_tried_again() -> None:
    """An environment variable holding a NUL (a value stored before it was refused) makes
    starting the process fail: supervision goes on, trying again after its delay."""
    issued: list[uuid.UUID] = []

    async def issue_token(workspace_id: uuid.UUID) -> str | None:
        issued.append(workspace_id)
        return "token"

    launcher = Launcher(
        server_url="ws://127.0.0.1:9",
        sandbox=Sandbox("none", []),
        issue_token=issue_token,
        backoff=(0.01, 0.02),
    )
    key = uuid.uuid4()
    launcher.ensure(AgentSpec(key, "command", command="true", parameters={"p": "a\x00b"}))
    try:
        await wait_until(lambda: len(issued) >= 3)
        assert launcher.running(key)
    finally:
        await launcher.close()
    assert not launcher.running(key)


async def test_workspaces_are_audited_however_created(
    app: FastAPI, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    """Over REST (with the client's address) and by a chat's tool (as the owner)."""
    service: Workspaces = app.state.workspaces
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{admin.org_id}/templates",
        admin,
        json={"name": "vm", "kind": "external"},
    )
    assert r.status_code == 201, r.text
    template = uuid.UUID(r.json()["id"])
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{member.org_id}/members/me/workspaces",
        member,
        json={"template_id": str(template), "name": "by-rest"},
    )
    assert r.status_code == 201, r.text
    await service.create(
        owner_id=member.id,
        organization_id=member.org_id,
        template_id=template,
        name="by-tool",
        parameters={},
    )
    r = await api.request("GET", "/api/v2/audit", admin)
    assert r.status_code == 200, r.text
    entries = {
        e["resource_target"]: e
        for e in r.json()["audit_logs"]
        if e["resource_type"] == "workspace" and e["action"] == "create"
    }
    assert sorted(entries) == ["by-rest", "by-tool"]
    for entry in entries.values():
        assert entry["user_id"] == str(member.id) and entry["status_code"] == 201
        assert entry["additional_fields"] == {"owner_id": str(member.id), "template": "vm"}
    assert entries["by-rest"]["ip"] and not entries["by-tool"]["ip"]
