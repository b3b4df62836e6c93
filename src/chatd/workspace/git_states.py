"""The git state of the workspaces whose agents are connected to this replica.

For each connected agent, :meth:`GitStates.follow` keeps one ``git_watch`` stream open
(:mod:`chatd.agent.protocol`) for as long as the connection lives, keeps the latest state of
every repository the agent reports, and passes each ``changes`` message on to the
``/stream/git`` clients of that workspace (:meth:`GitStates.subscribe`) and, summarised, to
``on_change`` (which keeps the bound chats' diff status current). A stream that ends while
the agent stays connected is opened again after a pause.

The summary describes the workspace's main repository: the one at the agent's directory when
there is one, else the one that changed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from pydantic import ValidationError

from chatd.agent import protocol
from chatd.agent.git.origin import public_origin
from chatd.sdk.git import WorkspaceAgentGitServerMessage, WorkspaceAgentRepoChanges
from chatd.store.chat_git_state import GitSummary
from chatd.workspace.conn import AgentConn, AgentError, AgentOpError, AgentStreamEnded

log = structlog.get_logger(__name__)

# Messages a ``/stream/git`` client may fall behind by before it is sent a fresh scan instead.
SUBSCRIBER_BACKLOG = 64
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0

OnChange = Callable[[uuid.UUID, GitSummary], Awaitable[None]]


class Signal(StrEnum):
    lagged = "lagged"  # the subscriber fell behind: it should send a fresh scan instead
    ended = "ended"  # the agent's connection ended


class Subscriber:
    """One ``/stream/git`` client's queue: messages, then possibly :class:`Signal` values."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[WorkspaceAgentGitServerMessage | Signal] = asyncio.Queue()

    def offer(self, item: WorkspaceAgentGitServerMessage | Signal) -> None:
        if item is Signal.ended:
            self.queue.put_nowait(item)  # after whatever waits: the client must hear it
            return
        if self.queue.qsize() >= SUBSCRIBER_BACKLOG:
            while not self.queue.empty():
                self.queue.get_nowait()
            item = Signal.lagged
        self.queue.put_nowait(item)


@dataclass
class _Workspace:
    conn: AgentConn
    repositories: dict[str, WorkspaceAgentRepoChanges] = field(default_factory=dict)
    last_changed: str = ""
    summary: GitSummary | None = None


def parse_message(payload: dict[str, Any]) -> WorkspaceAgentGitServerMessage:
    """An agent's ``changes`` message, its origins without credentials (an agent from an
    older release may still send them); raises :class:`ValueError` for anything else."""
    try:
        message = WorkspaceAgentGitServerMessage.model_validate(payload)
    except ValidationError as exc:
        raise ValueError(f"not a git message: {exc.error_count()} error(s)") from None
    for repo in message.repositories or []:
        repo.remote_origin = public_origin(repo.remote_origin)
    return message


class GitStates:
    def __init__(self, on_change: OnChange | None = None, *, restart_delay: float = RESTART_DELAY):
        self.on_change = on_change
        self.restart_delay = restart_delay
        self._workspaces: dict[uuid.UUID, _Workspace] = {}
        self._subscribers: dict[uuid.UUID, set[Subscriber]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def follow(self, conn: AgentConn) -> None:
        """Follow the git state of ``conn``'s workspace while the connection lives."""
        state = _Workspace(conn)
        self._workspaces[conn.workspace_id] = state
        task = asyncio.get_running_loop().create_task(self._follow(state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.contextmanager
    def subscribe(self, workspace_id: uuid.UUID) -> Iterator[Subscriber]:
        """The messages the workspace's agent sends from now on."""
        subscriber = Subscriber()
        self._subscribers.setdefault(workspace_id, set()).add(subscriber)
        try:
            yield subscriber
        finally:
            subscribers = self._subscribers.get(workspace_id)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[workspace_id]

    def main_repository(self, workspace_id: uuid.UUID) -> WorkspaceAgentRepoChanges | None:
        state = self._workspaces.get(workspace_id)
        if state is None or state.conn.closed:
            return None
        return _main(state)

    async def record(self, workspace_id: uuid.UUID) -> None:
        """Hand the workspace's current summary to ``on_change`` again (a chat was just bound
        to it: its diff status shows the state without waiting for the next change)."""
        state = self._workspaces.get(workspace_id)
        if state is None or state.conn.closed or state.summary is None:
            return
        await self._record(state, state.summary)

    async def _follow(self, state: _Workspace) -> None:
        conn = state.conn
        workspace_id = conn.workspace_id
        delay = self.restart_delay
        while not conn.closed:
            try:
                async with conn.stream(protocol.GIT_WATCH, {}) as stream:
                    first = True
                    while True:
                        payload = await stream.receive()
                        if isinstance(payload, dict):
                            await self._received(state, parse_message(payload), whole=first)
                            first, delay = False, self.restart_delay
            except AgentStreamEnded:
                pass
            except AgentOpError as exc:
                if exc.code == protocol.BAD_REQUEST:  # an agent without a git watch
                    log.info("workspace agent does not watch git", workspace_id=str(workspace_id))
                    break
                log.warning(
                    "workspace git watch failed", workspace_id=str(workspace_id), error=exc.message
                )
            except (AgentError, ValueError) as exc:
                if not conn.closed:
                    log.warning(
                        "workspace git watch failed",
                        workspace_id=str(workspace_id),
                        error=str(exc),
                    )
            except Exception:
                log.exception("workspace git watch failed", workspace_id=str(workspace_id))
            if not conn.closed:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RESTART_DELAY)
        if self._workspaces.get(workspace_id) is state:
            del self._workspaces[workspace_id]
            for subscriber in list(self._subscribers.get(workspace_id, ())):
                subscriber.offer(Signal.ended)

    async def _received(
        self, state: _Workspace, message: WorkspaceAgentGitServerMessage, *, whole: bool
    ) -> None:
        """``whole``: the message holds every repository (a stream's first): what it does
        not name went away meanwhile."""
        if whole:
            state.repositories.clear()
        for repo in message.repositories or []:
            if repo.removed:
                state.repositories.pop(repo.repo_root, None)
            else:
                state.repositories[repo.repo_root] = repo
                state.last_changed = repo.repo_root
        for subscriber in list(self._subscribers.get(state.conn.workspace_id, ())):
            subscriber.offer(message)
        summary = _summary(_main(state))
        if summary != state.summary:
            state.summary = summary
            await self._record(state, summary)

    async def _record(self, state: _Workspace, summary: GitSummary) -> None:
        if self.on_change is None:
            return
        try:
            await self.on_change(state.conn.workspace_id, summary)
        except Exception:
            state.summary = None  # written again with the next message
            log.exception(
                "could not record a workspace's git state",
                workspace_id=str(state.conn.workspace_id),
            )

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _main(state: _Workspace) -> WorkspaceAgentRepoChanges | None:
    repos = state.repositories
    root = state.conn.directory.rstrip("/") or "/"
    return repos.get(root) or repos.get(state.last_changed)


def _summary(repo: WorkspaceAgentRepoChanges | None) -> GitSummary:
    if repo is None:
        return GitSummary()
    return GitSummary(
        branch=repo.branch,
        remote_origin=repo.remote_origin,
        additions=repo.additions,
        deletions=repo.deletions,
        changed_files=repo.changed_files,
    )
