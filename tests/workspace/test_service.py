"""The Workspaces service as tools use it: what start and connection say when an agent cannot
be had."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from chatd.workspace.conn import AgentUnavailable
from chatd.workspace.service import WorkspaceInputError, Workspaces
from tests.helpers import Api, ApiUser

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
