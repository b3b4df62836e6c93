"""The contract between the worker (which owns chats) and a turn (which runs one).

The worker claims a pending chat, starts :func:`chatd.engine.turn.run_turn` as a task with a
:class:`TurnContext`, and when the user interrupts (or the server shuts down) it sets
``ctx.stop_reason`` and cancels the task. The turn catches the cancellation where it is,
persists what it has (engine-behaviour §5.7), calls ``asyncio.current_task().uncancel()`` and
returns a :class:`TurnOutcome`; the worker then runs the finishing transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chatd.engine.models import ClientFactory, ResolvedModel
from chatd.engine.retry import Sleep
from chatd.events.hub import EventHub
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.tools.registry import ToolRegistry, default_registry
from chatd.tools.workspace_mcp_cache import WorkspaceMCPCache
from chatd.workspace.service import Workspaces


class StopReason(StrEnum):
    interrupted = "interrupted"  # interrupt, edit, promote, archive, or another worker took it
    shutdown = "shutdown"  # this replica is stopping: the chat goes back to pending


class StartSlot:
    """A place among the turns that do their start-up (reads, the prompt) at the same time.

    Starting a turn is CPU work on the event loop (database reads, the prompt, the request).
    When many turns start together, running them all at once makes every loop pass long, and
    the deltas of the streams already running wait for it; taking turns keeps each pass short.
    The worker takes the slot before announcing the turn; the turn frees it just before its
    first model call (the network wait is not start-up work); the worker frees it in any case.
    """

    def __init__(self, places: asyncio.Semaphore) -> None:
        self._places = places
        self._held = False

    async def take(self) -> None:
        await self._places.acquire()
        self._held = True

    def free(self) -> None:
        if self._held:
            self._held = False
            self._places.release()


@dataclass
class TurnContext:
    chat_id: uuid.UUID
    worker_id: uuid.UUID
    db: Database
    hub: EventHub
    settings: Settings
    stop_reason: StopReason | None = None
    # The logged number of the claim's ``running`` status (the chat's ``turn_seq``; 0 for a
    # chat never claimed, as in tests that run a turn without the worker).
    turn_seq: int = 0
    # Seams for tests: built-in tools, model client construction, the retry sleep.
    tools: ToolRegistry = field(default_factory=default_registry)
    client_factory: ClientFactory | None = None  # None: chatd.llm.factory.create_client
    sleep: Sleep = asyncio.sleep
    # The turn's place among the turns starting at once; freed when its model call goes out.
    start_slot: StartSlot | None = None
    # The chat row as the worker claimed it (None: the turn reads it).
    chat: Mapping[Any, Any] | None = None
    # The model the turn resolved as it started (None: it resolved none); the turn summary
    # reuses it.
    model: ResolvedModel | None = None
    # Where the chat's workspace tools run (None: workspaces are not available).
    workspaces: Workspaces | None = None
    # The workspace MCP tools listed for chats (the worker's, shared by its turns).
    workspace_mcp: WorkspaceMCPCache = field(default_factory=WorkspaceMCPCache)
