"""A registry of built-in tools, each with a JSON-schema argument object and an async body.

Built-ins (workspace, platform, sub-agent tools) register themselves in the process-wide
:func:`default_registry`; a turn reads the registry from its context, so tests inject their own.
A tool answers with a :class:`ToolOutput`; :func:`encode_result` turns it into the stored
``tool-result`` value (engine-behaviour §2.3).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from chatd.llm.types import ToolSpec


@dataclass(frozen=True)
class ToolCallContext:
    """What a running tool knows about its call."""

    chat_id: uuid.UUID
    owner_id: uuid.UUID
    tool_call_id: str


@dataclass(frozen=True)
class ToolOutput:
    """A tool's answer: text (JSON text is kept as JSON), or an error text."""

    text: str
    is_error: bool = False


ToolRun = Callable[[dict[str, Any], ToolCallContext], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolRun

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


_DEFAULT = ToolRegistry()


def default_registry() -> ToolRegistry:
    """The process-wide registry built-in tools register into."""
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
