"""The tools a chat's workspace MCP servers listed, kept per chat by the agent they came from
(:mod:`chatd.tools.workspace_mcp` lists them), so the chat's later turns on that agent do not
list again. Apart from the listing so that a worker holds one without loading the MCP SDK.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from chatd.tools.registry import Tool

CACHED_CHATS = 4096


class WorkspaceMCPCache:
    """Per chat (the most recent :data:`CACHED_CHATS`): the agent and its listed tools."""

    def __init__(self, size: int = CACHED_CHATS) -> None:
        self.size = size
        self._entries: OrderedDict[uuid.UUID, tuple[uuid.UUID, list[Tool]]] = OrderedDict()

    def get(self, chat_id: uuid.UUID, agent_id: uuid.UUID) -> list[Tool] | None:
        entry = self._entries.get(chat_id)
        if entry is None or entry[0] != agent_id:
            return None
        self._entries.move_to_end(chat_id)
        return list(entry[1])

    def put(self, chat_id: uuid.UUID, agent_id: uuid.UUID, tools: list[Tool]) -> None:
        """Keep a non-empty listing (an empty one is asked for again next time)."""
        if not tools:
            return
        self._entries[chat_id] = (agent_id, list(tools))
        self._entries.move_to_end(chat_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
