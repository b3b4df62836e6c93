"""The workspace lifecycle as the API and the platform tools use it.

:class:`Workspaces` creates workspaces from templates (making a local one's directory:
:mod:`chatd.workspace.provision`), starts and supervises the agents this server runs
(:mod:`chatd.workspace.launcher`), keeps the live connections of the agents that dialled in
(:class:`~chatd.workspace.agents.AgentHub`) and records their status. One per replica.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from chatd import audit
from chatd.events.hub import EventHub
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.workspaces import Template, Workspace, WorkspaceAgentStatus
from chatd.security import agent_token_hash, new_agent_token
from chatd.settings import Settings
from chatd.store import templates as tq
from chatd.store import workspaces as wq
from chatd.store.audit import AuditEntry
from chatd.store.chat_git_state import GitSummary, record_git_state
from chatd.store.db import Database, sqlite_path
from chatd.store.sql import Connection, RowDict
from chatd.workspace import provision, rules
from chatd.workspace.agents import AgentHub, WebSocketAgentConn
from chatd.workspace.conn import AgentConn, AgentUnavailable
from chatd.workspace.errors import WorkspaceExists as WorkspaceExists
from chatd.workspace.errors import WorkspaceInputError as WorkspaceInputError
from chatd.workspace.git_states import GitStates
from chatd.workspace.launcher import AGENT_COMMAND, BACKOFF, STOP_GRACE, AgentSpec, Launcher
from chatd.workspace.sandbox import Sandbox

log = structlog.get_logger(__name__)

# Tries at a free generated name before giving up.
NAME_TRIES = 5
REPLACED = "replaced by a newer connection of the same agent"
# An external agent in these states is not waited for.
AWAY = (WorkspaceAgentStatus.disconnected, WorkspaceAgentStatus.timeout)


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    agent_token: str | None  # only for an external workspace, shown once


def agent_url(http_address: str) -> str:
    """The URL the server's own agents dial: loopback unless it listens on one address."""
    host, _, port = http_address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "localhost") or host.startswith("127."):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{port}"


class Workspaces:
    """Templates, workspaces and the way to their agents, for one replica."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        server_url: str | None = None,
        agent_command: Sequence[str] = AGENT_COMMAND,
        backoff: tuple[float, float] = BACKOFF,
        stop_grace: float = STOP_GRACE,
        hub: EventHub | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.settings = settings
        self.data_dir = settings.data_dir.expanduser().absolute()
        self.connect_timeout = settings.agent_connect_timeout
        self.agents = AgentHub()
        # Each connected agent's git state; with a hub, it keeps the bound chats' diff status.
        self.git = GitStates(self._record_git if hub is not None else None)
        # What a sandboxed agent must not see: the data directory (the database, the secret
        # key, the other workspaces), the config directory, a SQLite database kept elsewhere.
        hidden = [self.data_dir, settings.config_dir.expanduser().absolute()]
        database = sqlite_path(settings.resolved_database_url())
        if database is not None:
            hidden.append(database.expanduser().absolute().parent)
        sandbox = Sandbox(settings.sandbox, hidden)
        self.launcher = Launcher(
            server_url=server_url or agent_url(settings.http_address),
            sandbox=sandbox,
            issue_token=self._issue_token,
            agent_command=agent_command,
            backoff=backoff,
            stop_grace=stop_grace,
        )

    async def open(self) -> None:
        """On server start: no agent is connected yet; the agents an earlier server started
        died with it."""
        changed = await self.db.run_write(wq.reset_agents, self.db.now())
        if changed:
            log.info("workspace agents marked disconnected at start", count=changed)

    # --- templates ---------------------------------------------------------------------

    async def list_templates(self, organization_id: uuid.UUID) -> list[Template]:
        """The organization's templates, by name."""
        rows = await self.db.run_read(tq.list_templates, organization_id)
        return [rules.template_view(row) for row in rows]

    async def get_template(self, template_id: uuid.UUID) -> Template | None:
        """One template, whatever its organization (None: there is no such template)."""
        row = await self.db.run_read(tq.get_template, template_id)
        return rules.template_view(row) if row else None

    # --- workspaces --------------------------------------------------------------------

    def _view(self, row: RowDict, token: str | None = None) -> Workspace:
        return rules.workspace_view(row, self.db.now(), self.connect_timeout, token)

    async def create(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_id: uuid.UUID,
        name: str | None,
        parameters: dict[str, str],
        requester: audit.Requester | None = None,
    ) -> CreatedWorkspace:
        """Create the workspace and start its agent (local and command kinds); does not wait
        for the agent. Audited, as done by ``requester`` (default: the owner, as when a chat's
        tool creates it). Raises :class:`WorkspaceInputError` (:class:`WorkspaceExists` for a
        name the owner has already)."""
        template = await self.db.run_read(tq.get_template, template_id)
        if template is None or template["organization_id"] != organization_id:
            raise WorkspaceInputError("template not found in the organization", "template_id")
        values = rules.parameter_values(template["parameters"], parameters)
        name = await self._free_name(owner_id, name, template["name"])
        workspace_id = uuid.uuid4()
        directory = None
        if template["kind"] == "local":
            directory = provision.workspace_directory(self.data_dir, workspace_id)
            await self._provision(directory, template["setup"], values)
        token, token_hash = new_agent_token()
        row_values: dict[str, Any] = {
            "id": workspace_id,
            "owner_id": owner_id,
            "organization_id": organization_id,
            "name": name,
            "template_id": template_id,
            "template_name": template["name"],
            "kind": template["kind"],
            "parameters": values,
            "directory": str(directory) if directory else None,
            "agent_status": wq.CONNECTING,
            "agent_started_at": self.db.now(),
            "agent_token_hash": token_hash if template["kind"] == "external" else None,
        }
        entry = (requester or audit.Requester(owner_id)).entry(
            AuditAction.create,
            ResourceType.workspace,
            201,
            resource_id=workspace_id,
            resource_target=name,
            fields={"owner_id": str(owner_id), "template": template["name"]},
        )
        try:
            row = await self.db.run_write(_insert_audited, self.db.now(), row_values, entry)
        except BaseException as exc:
            if directory is not None:
                await asyncio.to_thread(self._remove_directory, directory)
            if isinstance(exc, wq.WorkspaceExists):
                raise _exists(name) from None
            raise
        audit.emit(entry)
        log.info(
            "workspace created",
            workspace_id=str(workspace_id),
            kind=template["kind"],
            template=template["name"],
        )
        if template["kind"] == "external":
            return CreatedWorkspace(self._view(row, token), token)
        self._launch(row, template)
        return CreatedWorkspace(self._view(row), None)

    async def _free_name(self, owner_id: uuid.UUID, name: str | None, template: str) -> str:
        if name is not None:
            rules.check_name(name, "workspace")
            if await self.db.run_read(wq.name_taken, owner_id, name):
                raise _exists(name)
            return name
        for _ in range(NAME_TRIES):
            candidate = rules.generated_name(template)
            if not await self.db.run_read(wq.name_taken, owner_id, candidate):
                return candidate
        raise WorkspaceInputError("could not find a free workspace name; give one", "name")

    async def _provision(self, directory: Path, setup: str | None, values: dict[str, str]) -> None:
        """Make a local workspace's directory; nothing is left behind when it fails."""
        roots = self.settings.workspace_clone_roots
        timeout = self.settings.workspace_clone_timeout
        if setup == "git":  # refused URLs before anything is made
            provision.clone_source(values.get("repo_url", ""), roots)
            provision.check_branch(values.get("branch", ""))
        await asyncio.to_thread(provision.make_directory, directory)
        try:
            if setup == "git":
                await provision.clone(
                    directory,
                    values["repo_url"],
                    values.get("branch", ""),
                    roots=roots,
                    time_limit=timeout,
                )
            else:
                await provision.init_scratch(directory, timeout)
        except BaseException:
            await asyncio.to_thread(self._remove_directory, directory)
            raise

    async def list_owned(self, owner_id: uuid.UUID) -> list[Workspace]:
        """The owner's workspaces, by name."""
        rows = await self.db.run_read(wq.list_workspaces, owner_id)
        return [self._view(row) for row in rows]

    async def get(self, workspace_id: uuid.UUID) -> Workspace | None:
        """The workspace or None."""
        row = await self.db.run_read(wq.get_workspace, workspace_id)
        return self._view(row) if row else None

    async def start(self, workspace_id: uuid.UUID) -> None:
        """Start the agent of a local or command workspace when it is not running (an
        external workspace's agent is started by its owner: nothing to do)."""
        row = await self.db.run_read(wq.get_workspace, workspace_id)
        if row is None:
            raise WorkspaceInputError("the workspace does not exist")
        if row["kind"] in wq.STARTED_BY_SERVER:
            try:
                await self._ensure_running(row)
            except AgentUnavailable as exc:
                raise WorkspaceInputError(exc.message) from None

    async def connection(self, workspace_id: uuid.UUID, *, wait: float) -> AgentConn:
        """The live connection to the workspace's agent, starting a local agent that is not
        running and waiting up to ``wait`` seconds for it to dial in. Raises
        :class:`AgentUnavailable` with a message that names the agent's status."""
        conn = self.agents.get(workspace_id)
        if conn is not None:
            return conn
        row = await self.db.run_read(wq.get_workspace, workspace_id)
        if row is None:
            raise AgentUnavailable("the workspace no longer exists")
        if row["kind"] in wq.STARTED_BY_SERVER:
            await self._ensure_running(row)
        elif (status := self._view(row).agent.status) in AWAY:
            raise AgentUnavailable(_unavailable(row, status))  # its owner must start it
        conn = await self.agents.wait(workspace_id, wait)
        if conn is not None:
            return conn
        row = await self.db.run_read(wq.get_workspace, workspace_id)
        if row is None:
            raise AgentUnavailable("the workspace no longer exists")
        status = self._view(row).agent.status
        raise AgentUnavailable(_unavailable(row, status, waited=wait))

    async def _ensure_running(self, row: RowDict) -> None:
        if self.launcher.running(row["id"]):
            self.launcher.ensure(self._spec(row, None))  # wakes one waiting to restart
            return
        template = None
        if row["kind"] == "command":
            template = (
                await self.db.run_read(tq.get_template, row["template_id"])
                if row["template_id"]
                else None
            )
            if template is None:
                raise AgentUnavailable(
                    "the workspace's template was deleted, so its agent cannot be started"
                )
        self._launch(row, template)

    def _launch(self, row: RowDict, template: RowDict | None) -> None:
        self.launcher.ensure(self._spec(row, template))

    @staticmethod
    def _spec(row: RowDict, template: RowDict | None) -> AgentSpec:
        return AgentSpec(
            workspace_id=row["id"],
            kind=row["kind"],
            directory=Path(row["directory"]) if row["directory"] else None,
            command=template["command"] if template else None,
            parameters=row["parameters"],
        )

    async def _issue_token(self, workspace_id: uuid.UUID) -> str | None:
        token, token_hash = new_agent_token()
        started = await self.db.run_write_one(
            wq.agent_starting, self.db.now(), workspace_id, token_hash
        )
        return token if started else None

    async def delete(self, workspace_id: uuid.UUID) -> None:
        """Delete the workspace: its agent and the agent's processes are stopped, a local
        workspace's directory removed; its chats stay, without a workspace."""
        row = await self.db.run_write(wq.delete_workspace, workspace_id)
        await self.launcher.stop(workspace_id)
        await self.agents.disconnect(workspace_id, "workspace deleted")
        if row is not None and row["directory"]:
            await asyncio.to_thread(self._remove_directory, Path(row["directory"]))
        if row is not None:
            log.info("workspace deleted", workspace_id=str(workspace_id))

    def _remove_directory(self, directory: Path) -> None:
        provision.remove_directory(directory, self.data_dir)

    # --- the agent endpoint ------------------------------------------------------------

    async def authenticate_agent(self, token: str | None) -> RowDict | None:
        """The workspace whose agent holds ``token`` (None: no such agent token)."""
        token_hash = agent_token_hash(token or "")
        if token_hash is None:
            return None
        return await self.db.run_read(wq.find_by_token_hash, token_hash)

    async def agent_connected(self, conn: WebSocketAgentConn) -> bool:
        """Record the connection and make it the workspace's (closing one it replaces);
        False when the workspace is gone."""
        hello = {
            "directory": conn.directory,
            "operating_system": conn.operating_system,
            "version": conn.version,
        }
        recorded = await self.db.run_write_one(
            wq.agent_connected, self.db.now(), conn.workspace_id, conn.build_id, hello
        )
        if not recorded:
            return False
        previous = self.agents.register(conn)
        if previous is not None:
            await previous.close(reason=REPLACED)
        self.git.follow(conn)
        log.info(
            "workspace agent connected",
            workspace_id=str(conn.workspace_id),
            build_id=str(conn.build_id),
            replaced=previous is not None,
        )
        return True

    async def agent_disconnected(self, conn: WebSocketAgentConn) -> None:
        self.agents.unregister(conn)
        changed = await self.db.run_write_one(
            wq.agent_disconnected, self.db.now(), conn.workspace_id, conn.build_id
        )
        if changed:
            log.info("workspace agent disconnected", workspace_id=str(conn.workspace_id))

    async def chat_bound(self, workspace_id: uuid.UUID) -> None:
        """A chat was bound to the workspace: give it the workspace's git state now."""
        await self.git.record(workspace_id)

    async def _record_git(self, workspace_id: uuid.UUID, summary: GitSummary) -> None:
        outbox = await self.db.run_write(
            record_git_state, self.db.now(), workspace_id, summary, self.settings.github_site()
        )
        if self.hub is not None:
            self.hub.publish(outbox)

    async def close(self) -> None:
        """Stop the local agents this replica started (server shutdown)."""
        await self.git.close()
        await self.launcher.close()
        await self.agents.close()


async def _insert_audited(
    conn: Connection, now: dt.datetime, values: dict[str, Any], entry: AuditEntry
) -> RowDict:
    row = await wq.insert_workspace(conn, now, values)
    await audit.record(conn, now, entry)
    return row


def _exists(name: str) -> WorkspaceExists:
    return WorkspaceExists(f"you already have a workspace named {name!r}", "name")


def _unavailable(row: RowDict, status: WorkspaceAgentStatus, waited: float | None = None) -> str:
    external = row["kind"] not in wq.STARTED_BY_SERVER
    if status is WorkspaceAgentStatus.timeout:
        text = "the workspace agent timed out connecting"
    elif waited is not None:
        text = f"the workspace agent did not connect within {waited:g} seconds (status: {status})"
    else:
        text = f"the workspace agent is {status}"
    if external:
        return (
            f"{text}; the workspace's owner runs its agent (chatd agent with the workspace's "
            "token): once it runs, call start_workspace"
        )
    return f"{text}; call start_workspace to start it"
