"""Platform tools for the chat's workspace: create_workspace, start_workspace (§13.2).

Both hold the turn's lifecycle lock, so they never run at once. create_workspace is
idempotent: a chat that has a workspace keeps it. A created workspace is bound to the chat
at once; then the tool waits for its agent and says what it found.
"""

from __future__ import annotations

from typing import Any

from chatd.sdk.workspaces import Workspace, WorkspaceAgentStatus
from chatd.tools import args as a
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj
from chatd.tools.templates import find_template
from chatd.tools.workspace_access import WorkspaceAccess
from chatd.workspace.service import WorkspaceInputError

ALREADY_EXISTS = (
    "This chat already has a workspace; keep using it. If its agent is not running, call "
    "start_workspace."
)


# agent_status (engine-behaviour §13.2) says only what is wrong; it is left out when the
# agent is ready.
NOT_READY = "not_ready"


async def _agent_fields(access: WorkspaceAccess) -> dict[str, Any]:
    """Wait for the agent: its connection's build and directory, or why it is not ready."""
    try:
        conn = await access.conn(wait=access.agent_wait)
    except ToolError as exc:
        return {"agent_status": NOT_READY, "agent_error": exc.message}
    return {"build_id": str(conn.build_id), "directory": conn.directory}


def _existing(workspace: Workspace) -> dict[str, Any]:
    """What create_workspace answers for the chat's workspace."""
    result: dict[str, Any] = {
        "created": False,
        "status": "already_exists",
        "workspace_name": workspace.name,
        "message": ALREADY_EXISTS,
    }
    if workspace.agent.status != WorkspaceAgentStatus.connected:
        result["agent_status"] = NOT_READY
    return result


async def _create_workspace(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    template_id = a.identifier(args, "template_id")
    name = a.string(args, "name", required=False).strip() or None
    parameters = a.string_map(args, "parameters")
    scope = ctx.scope()
    access = scope.workspace
    service = access.service()
    async with access.lifecycle:
        if access.workspace_id is not None:
            existing = await service.get(access.workspace_id)
            if existing is not None:
                return json_output(_existing(existing))
        await find_template(ctx, template_id)
        try:
            created = await service.create(
                owner_id=scope.facts.owner_id,
                organization_id=scope.facts.organization_id,
                template_id=template_id,
                name=name,
                parameters=parameters,
            )
        except WorkspaceInputError as exc:
            raise ToolError(exc.message) from None
        workspace = created.workspace
        await access.bind(workspace.id)
        agent = await _agent_fields(access)
    return json_output({"created": True, "workspace_name": workspace.name} | agent)


async def _start_workspace(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    access = ctx.scope().workspace
    service = access.service()
    async with access.lifecycle:
        workspace_id = access.workspace_id
        if workspace_id is None:
            raise ToolError("This chat has no workspace to start; call create_workspace first.")
        workspace = await service.get(workspace_id)
        if workspace is None:
            raise ToolError(
                "This chat's workspace was deleted; call create_workspace to make a new one."
            )
        try:
            await service.start(workspace_id)
        except WorkspaceInputError as exc:
            raise ToolError(exc.message) from None
        agent = await _agent_fields(access)
    return json_output({"started": True, "workspace_name": workspace.name} | agent)


CREATE_WORKSPACE = Tool(
    name="create_workspace",
    description=(
        "Create a workspace for this chat from a template (see list_templates and "
        "read_template) and wait for it to be ready; the workspace tools then run in it. "
        "Does nothing when the chat already has a workspace."
    ),
    input_schema=obj(
        {
            "template_id": {"type": "string", "format": "uuid"},
            "name": {
                "type": "string",
                "description": "Workspace name: lowercase letters, digits and dashes.",
            },
            "parameters": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Template parameter values by name.",
            },
        },
        "template_id",
    ),
    run=_create_workspace,
)
START_WORKSPACE = Tool(
    name="start_workspace",
    description=(
        "Start this chat's workspace when its agent is not running, and wait until it is."
    ),
    input_schema=obj({}),
    run=_start_workspace,
)
