"""The shipped testing tools (``CHATD_TESTING_TOOLS``): echo, wait, fail."""

from __future__ import annotations

import uuid

import pytest

from chatd.testing.tools import TESTING_TOOLS, register_testing_tools
from chatd.tools.registry import ToolCallContext, ToolOutput, ToolRegistry

pytestmark = pytest.mark.anyio
CTX = ToolCallContext(chat_id=uuid.uuid4(), owner_id=uuid.uuid4(), tool_call_id="call_1")


async def run(name: str, **args: object) -> ToolOutput:
    registry = ToolRegistry()
    register_testing_tools(registry)
    tool = registry.get(name)
    assert tool is not None
    return await tool.run(dict(args), CTX)


async def test_echo_wait_fail() -> None:
    assert await run("echo", text="hi") == ToolOutput("hi")
    assert await run("wait", seconds=0) == ToolOutput("waited 0s")
    assert (await run("wait", seconds=6)).is_error
    assert (await run("wait", seconds="1")).is_error
    assert await run("fail", message="boom") == ToolOutput("boom", is_error=True)
    assert (await run("fail")).is_error


def test_registering_twice_keeps_one_of_each() -> None:
    registry = ToolRegistry()
    register_testing_tools(registry)
    register_testing_tools(registry)
    assert [t.name for t in registry] == [t.name for t in TESTING_TOOLS] == ["echo", "wait", "fail"]
