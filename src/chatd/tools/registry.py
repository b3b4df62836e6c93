"""A registry of built-in tools, each with a JSON-schema argument object and an async body.

Built-ins (workspace, platform, plan and skill tools, :mod:`chatd.tools.builtin`) fill the
process-wide :func:`default_registry`; a turn reads the registry from its context, so tests
inject their own. A tool answers with a :class:`ToolOutput` (or raises :class:`ToolError`);
:func:`encode_result` turns it into the stored ``tool-result`` value (engine-behaviour §2.3).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from chatd.llm.types import ToolSpec

if TYPE_CHECKING:
    from chatd.tools.scope import TurnScope


class ToolError(Exception):
    """A tool cannot do what it was asked; ``message`` is the error result the model reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ToolCallContext:
    """What a running tool knows about its call and its turn."""

    chat_id: uuid.UUID
    owner_id: uuid.UUID
    tool_call_id: str
    # The chat's facts and the turn's services (None: run outside a turn, as some tests do).
    turn: TurnScope | None = None
    # When the model made the call; None: now. A call resumed after its turn was parked was
    # made when its step was saved.
    called_at: dt.datetime | None = None

    def scope(self) -> TurnScope:
        if self.turn is None:
            raise ToolError("this tool only runs inside a chat turn")
        return self.turn


@dataclass(frozen=True)
class Attachment:
    """A chat file a tool made; the turn shows it as an assistant ``file`` part (§5.6)."""

    file_id: uuid.UUID
    media_type: str
    name: str


@dataclass(frozen=True)
class ToolOutput:
    """A tool's answer: text (JSON text is kept as JSON), or an error text."""

    text: str
    is_error: bool = False
    attachments: tuple[Attachment, ...] = ()
    # Not an answer yet: the turn parks until then, or until one of these chats settles, and
    # calls the tool again (see chatd.store.subagents).
    parked_until: dt.datetime | None = None
    awaits: tuple[uuid.UUID, ...] = ()


ToolRun = Callable[[dict[str, Any], ToolCallContext], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolRun
    # A successful (non-error) result ends the turn once its step is saved (§5.4).
    stop_after: bool = False
    # The MCP server configuration the tool comes from (§17); its results name it.
    mcp_server_config_id: uuid.UUID | None = None
    # The tool may park its turn (ToolOutput.parked_until); a call of it left open by a parked
    # turn is made again when the turn resumes.
    resumes: bool = False
    # The tool is one of the workspace's MCP servers (its .mcp.json, through the agent).
    workspace_mcp: bool = False

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.input_schema)


class ToolRegistry:
    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered already")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())


_DEFAULT: ToolRegistry | None = None


def default_registry() -> ToolRegistry:
    """The process-wide registry: the built-in tools, and whatever registers into it."""
    global _DEFAULT
    if _DEFAULT is None:
        from chatd.tools.builtin import BUILTIN_TOOLS  # the tools import this module

        _DEFAULT = ToolRegistry(list(BUILTIN_TOOLS))
    return _DEFAULT


def encode_result(output: ToolOutput) -> JsonValue:
    """Errors are ``{"error": text}``; JSON text is stored as JSON; other text as ``{"output"}``."""
    if output.is_error:
        return {"error": output.text}
    try:
        value: JsonValue = json.loads(output.text)
    except ValueError:
        return {"output": output.text}
    return value


def json_output(value: Any, *attachments: Attachment) -> ToolOutput:
    """A result object as JSON text with sorted keys (as the reference's results read)."""
    return ToolOutput(json.dumps(value, sort_keys=True, ensure_ascii=False), False, attachments)
