"""A connection to one workspace agent, as the server's tools use it.

:class:`AgentConn` sends one operation of :mod:`chatd.agent.protocol` and returns its result.
Two kinds of failure: :class:`AgentOpError` (the agent ran the operation and it failed: a
missing file, an edit without a match) and :class:`AgentUnavailable` (no agent answered: not
connected, or gone mid-call). Tools turn both into error results for the model.
"""

from __future__ import annotations

import abc
import uuid
from typing import Any


class AgentError(Exception):
    """An operation that did not produce a result."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AgentOpError(AgentError):
    """The agent answered with an error (``code`` from :mod:`chatd.agent.protocol`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AgentUnavailable(AgentError):
    """No answer: the agent is not connected, went away during the call, or timed out."""


class AgentConn(abc.ABC):
    """One live connection to a workspace's agent."""

    # The workspace's agent, and this connection of it (a new ``build_id`` each time the agent
    # connects; chats record both).
    workspace_id: uuid.UUID
    agent_id: uuid.UUID
    build_id: uuid.UUID
    # What the agent said of itself when it connected.
    directory: str
    home: str
    operating_system: str
    version: str

    @abc.abstractmethod
    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run ``op`` on the agent and return its result. Callers bound the wait with
        ``asyncio.timeout``; cancelling the caller cancels the operation on the agent too."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """The connection has ended (a new one may replace it)."""
