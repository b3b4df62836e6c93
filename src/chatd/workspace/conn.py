"""A connection to one workspace agent, as the server's tools use it.

:class:`AgentConn` sends one operation of :mod:`chatd.agent.protocol` and returns its result.
Two kinds of failure: :class:`AgentOpError` (the agent ran the operation and it failed: a
missing file, an edit without a match) and :class:`AgentUnavailable` (no agent answered: not
connected, or gone mid-call). Tools turn both into error results for the model.
"""

from __future__ import annotations

import abc
import uuid
from contextlib import AbstractAsyncContextManager
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


class AgentStreamEnded(Exception):
    """The agent ended a streaming operation, with ``result``."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("the stream ended")
        self.result = result


class AgentStream(abc.ABC):
    """One streaming operation in progress (``chatd.agent.protocol.STREAMS``)."""

    @abc.abstractmethod
    async def receive(self) -> dict[str, Any] | bytes:
        """The next event (a JSON object) or bytes. Raises :class:`AgentStreamEnded` once
        the agent ended the operation, :class:`AgentOpError` when it ended with an error,
        :class:`AgentUnavailable` when the connection went away."""

    @abc.abstractmethod
    async def send_data(self, data: bytes) -> None:
        """Bytes to the operation; raises :class:`AgentUnavailable`."""


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

    @abc.abstractmethod
    def stream(self, op: str, args: dict[str, Any]) -> AbstractAsyncContextManager[AgentStream]:
        """Start the streaming ``op``; leaving the context cancels it on the agent unless it
        has ended. Raises :class:`AgentUnavailable` when not connected."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """The connection has ended (a new one may replace it)."""
