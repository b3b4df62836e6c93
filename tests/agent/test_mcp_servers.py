"""mcp_tools and mcp_call: the servers of a workspace's .mcp.json, real processes started by
the agent (the tests' MCP server in its stdio mode, copied into the workspace)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types as mcp_types

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.mcp_servers import MEDIA_MAX, TEXT_MAX, capped
from tests.agent.conftest import call, fails

pytestmark = pytest.mark.anyio

SERVER_MAIN = Path(__file__).parent.parent / "tools" / "mcp_server_main.py"
LONG = 60_000  # ms: a wait a server that starts never reaches


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The agent runs on uvloop where it is installed: servers work on both loops."""
    return request.param  # type: ignore[no-any-return]


def server_entry(value: str = "from-json") -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["mcp_server_main.py", "stdio"],
        "env": {"MCP_TEST_VALUE": value},
    }


def declare(workspace: Path, **servers: Any) -> None:
    shutil.copy(SERVER_MAIN, workspace / "mcp_server_main.py")
    (workspace / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))


async def where(agent: Dispatcher, server: str = "test") -> tuple[str, str, int]:
    """The server's working directory, its MCP_TEST_VALUE and its process id."""
    answer = await call(agent, protocol.MCP_CALL, server=server, tool="where", arguments={})
    [item] = answer["result"]["content"]
    directory, value, pid = item["text"].split()
    return directory, value, int(pid)


async def gone(pid: int) -> None:
    """Wait until the process has ended (polled: nothing signals it here)."""
    with anyio.fail_after(30):
        for _ in itertools.count():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await anyio.sleep(0.02)


async def test_servers_start_on_first_use_in_the_workspace_and_stay(
    agent: Dispatcher, workspace: Path
) -> None:
    declare(
        workspace,
        test=server_entry(),
        missing={"command": "no-such-mcp-server-command"},
        odd={"type": "ftp", "url": "ftp://example.com"},
    )
    listed = await call(agent, protocol.MCP_TOOLS, wait_ms=LONG)
    entries = {e["name"]: e for e in listed["servers"]}
    assert [e["name"] for e in listed["servers"]] == ["test", "missing", "odd"]
    tools = {t["name"]: t for t in entries["test"]["tools"]}
    assert list(tools) == [
        "echo",
        "add",
        "broken",
        "picture",
        "secret",
        "sleepy",
        "grow",
        "where",
        "exit",
    ]
    assert tools["echo"]["description"] == "Say the text back."
    assert tools["echo"]["input_schema"]["required"] == ["text"]
    assert "No such file" in entries["missing"]["error"]
    assert "unknown server type 'ftp'" in entries["odd"]["error"]

    # In the workspace, with its environment and the entry's; the same process each time.
    directory, value, pid = await where(agent)
    assert (directory, value) == (str(workspace), "from-json")
    assert (await where(agent))[2] == pid
    answer = await call(
        agent, protocol.MCP_CALL, server="test", tool="add", arguments={"a": 2, "b": 3}
    )
    assert answer["result"]["content"] == [{"type": "text", "text": "5"}]
    failed = await call(agent, protocol.MCP_CALL, server="test", tool="broken", arguments={})
    assert failed["result"]["isError"] is True
    assert "broken" in failed["result"]["content"][0]["text"]

    message = await fails(agent, protocol.MCP_CALL, protocol.FAILED, server="missing", tool="x")
    assert message.startswith("MCP server missing failed:") and "No such file" in message
    message = await fails(agent, protocol.MCP_CALL, protocol.NOT_FOUND, server="nope", tool="x")
    assert "declared: test, missing" in message

    await agent.close()
    await gone(pid)


async def test_a_server_that_died_or_changed_is_started_again(
    agent: Dispatcher, workspace: Path
) -> None:
    declare(workspace, test=server_entry("one"))
    _, value, first = await where(agent)
    assert value == "one"
    message = await fails(
        agent, protocol.MCP_CALL, protocol.FAILED, server="test", tool="exit", arguments={}
    )
    assert message.startswith("MCP server test failed:")
    _, value, second = await where(agent)
    assert value == "one" and second != first
    await gone(first)

    declare(workspace, test=server_entry("two"))
    _, value, third = await where(agent)
    assert value == "two" and third != second
    await gone(second)

    declare(workspace)  # no server any more: it is stopped
    assert (await call(agent, protocol.MCP_TOOLS))["servers"] == []
    await gone(third)


async def test_a_server_that_never_answers_bounds_the_ops(
    agent: Dispatcher, workspace: Path
) -> None:
    declare(
        workspace,
        silent={"command": "sh", "args": ["-c", "exec sleep 600"]},
        dies={"command": "sh", "args": ["-c", "echo cannot start >&2; exit 1"]},
    )
    listed = await call(agent, protocol.MCP_TOOLS, wait_ms=300)
    silent, dies = listed["servers"]
    assert silent == {"name": "silent", "error": "still starting", "starting": True}
    assert dies["name"] == "dies" and dies["error"].endswith("cannot start")
    message = await fails(
        agent,
        protocol.MCP_CALL,
        protocol.FAILED,
        server="silent",
        tool="anything",
        arguments={},
        timeout_ms=200,
    )
    assert message == "MCP server silent did not answer within 0.2 s"


async def test_a_file_that_cannot_be_used_is_said_so(agent: Dispatcher, workspace: Path) -> None:
    assert await call(agent, protocol.MCP_TOOLS) == {"servers": []}
    (workspace / ".mcp.json").write_text("{not json")
    listed = await call(agent, protocol.MCP_TOOLS)
    assert listed["servers"] == [] and "not valid JSON" in listed["error"]
    (workspace / ".mcp.json").write_text('{"servers": {}}')
    assert 'no "mcpServers" object' in (await call(agent, protocol.MCP_TOOLS))["error"]
    await fails(agent, protocol.MCP_TOOLS, protocol.BAD_REQUEST, wait_ms="soon")


def test_results_are_capped_to_fit_a_frame() -> None:
    big_media = base64.b64encode(b"x" * (MEDIA_MAX // 4 * 3)).decode()
    result = mcp_types.CallToolResult(
        content=[
            mcp_types.TextContent(type="text", text="a" * (TEXT_MAX - 10)),
            mcp_types.TextContent(type="text", text="é" * 20),
            mcp_types.TextContent(type="text", text="dropped"),
            mcp_types.ImageContent(type="image", data=big_media, mime_type="image/png"),
            mcp_types.ImageContent(type="image", data="AAAA", mime_type="image/png"),
        ],
        structured_content={"blob": "b" * TEXT_MAX},
    )
    data = capped(result)
    first, second, image, too_large = data["content"]
    assert first["text"] == "a" * (TEXT_MAX - 10)
    assert second["text"] == "é" * 5 + f"\n[the result's text was cut at {TEXT_MAX} bytes]"
    assert image["data"] == big_media
    assert too_large == {"type": "text", "text": "[image content too large]"}
    assert "structuredContent" not in data
    assert len(json.dumps(data)) < protocol.MAX_FRAME_BYTES
