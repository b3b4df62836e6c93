"""The workspace lifecycle as the API and the platform tools use it.

Skeleton of the interface: the implementation replaces every body below.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from chatd.workspace.conn import AgentConn


class WorkspaceInputError(Exception):
    """Input the caller must change (unknown template, bad parameter, refused clone URL);
    ``message`` is fit for a 400 answer and for a tool error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Any  # chatd.sdk.workspaces.Workspace
    agent_token: str | None  # only for an external workspace, shown once


class Workspaces:
    """Templates, workspaces and the way to their agents, for one replica."""

    async def list_templates(self, organization_id: uuid.UUID) -> list[Any]:
        """The organization's templates (``chatd.sdk.workspaces.Template``), by name."""
        raise NotImplementedError

    async def get_template(self, template_id: uuid.UUID) -> Any | None:
        raise NotImplementedError

    async def create(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_id: uuid.UUID,
        name: str | None,
        parameters: dict[str, str],
    ) -> CreatedWorkspace:
        """Create the workspace and start its agent (local and command kinds); does not wait
        for the agent. Raises :class:`WorkspaceInputError`."""
        raise NotImplementedError

    async def get(self, workspace_id: uuid.UUID) -> Any | None:
        """The workspace (``chatd.sdk.workspaces.Workspace``) or None."""
        raise NotImplementedError

    async def start(self, workspace_id: uuid.UUID) -> None:
        """Start the agent of a local or command workspace when it is not running."""
        raise NotImplementedError

    async def connection(self, workspace_id: uuid.UUID, *, wait: float) -> AgentConn:
        """The live connection to the workspace's agent, starting a local agent that is not
        running and waiting up to ``wait`` seconds for it to dial in. Raises
        :class:`chatd.workspace.conn.AgentUnavailable` with a message that names the agent's
        status."""
        raise NotImplementedError

    async def delete(self, workspace_id: uuid.UUID) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop the local agents this replica started (server shutdown)."""
        raise NotImplementedError
