"""Built-in tools for tests and development: ``echo``, ``wait`` and ``fail``.

They let a real server run tool-calling turns before any workspace tool exists. A server
registers them at start-up when ``CHATD_TESTING_TOOLS=true`` (see
:attr:`chatd.settings.Settings.testing_tools`); a script of the fake provider then calls them
by name.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chatd.tools.registry import Tool, ToolCallContext, ToolOutput, ToolRegistry

MAX_WAIT_SECONDS = 5.0
DEFAULT_FAILURE = "the fail tool failed, as asked"


async def _echo(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return ToolOutput(str(args.get("text", "")))


async def _wait(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    seconds = args.get("seconds", 0)
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ToolOutput("seconds must be a number", is_error=True)
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        return ToolOutput(f"seconds must be between 0 and {MAX_WAIT_SECONDS:g}", is_error=True)
    await asyncio.sleep(seconds)
    return ToolOutput(f"waited {seconds:g}s")


async def _fail(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return ToolOutput(str(args.get("message") or DEFAULT_FAILURE), is_error=True)


TESTING_TOOLS = (
    Tool(
        name="echo",
        description="Return the given text unchanged.",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
        run=_echo,
    ),
    Tool(
        name="wait",
        description=f"Sleep for the given seconds (at most {MAX_WAIT_SECONDS:g}), then return.",
        input_schema={
            "type": "object",
            "properties": {
                "seconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS}
            },
            "required": ["seconds"],
        },
        run=_wait,
    ),
    Tool(
        name="fail",
        description="Always answer with an error result (the message, when given).",
        input_schema={"type": "object", "properties": {"message": {"type": "string"}}},
        run=_fail,
    ),
)


def register_testing_tools(registry: ToolRegistry) -> None:
    """Add the testing tools to ``registry`` (those it already has are left alone)."""
    for tool in TESTING_TOOLS:
        if tool.name not in registry:
            registry.register(tool)
