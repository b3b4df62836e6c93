"""Turns with the chat's MCP servers (engine-behaviour §17): a real MCP server process on a
loopback port, the shipped fake provider calling its tools. A server that is down or refuses
the key is skipped and the turn goes on; plan turns keep only servers allowed in plan mode.

And the workspace's MCP servers, declared in its .mcp.json and run by its agent (every kind of
agent, a local one in its sandbox): the tests' MCP server in its stdio mode and the published
mcp-server-time, and the HTTP one, listed and called through the agent."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatd.agent import protocol
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.tables import chats
from chatd.store.turn_outcome import OutcomeKind
from chatd.testing import FakeProvider
from tests.engine.mcp_helpers import KEY, SERVER_MAIN, add_server, free_port, serve_process, use
from tests.engine.tool_turns import ToolTurn, call, tool_turn
from tests.engine.turn_fakes import payloads
from tests.tools.agents import AgentPool, DispatcherConn

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def mcp_port() -> Iterator[int]:
    with serve_process(SERVER_MAIN, "{port}", KEY) as port:
        yield port


@pytest.fixture
async def bound(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    agent_pool: AgentPool,
    fake: tuple[FakeProvider, str],
) -> AsyncIterator[ToolTurn]:
    """A turn in a workspace; a first start of an MCP server may be slow on a busy machine."""
    made = await tool_turn(db, settings, tmp_path, agent_pool, *fake, workspace_mcp_timeout=60)
    yield made
    await made.service.close()


async def test_the_model_calls_mcp_tools_and_broken_servers_are_skipped(
    bare: ToolTurn, db: Database, mcp_port: int
) -> None:
    base = f"http://127.0.0.1:{mcp_port}"
    docs = await add_server(db, "docs", f"{base}/mcp")
    events = await add_server(
        db, "events", f"{base}/sse-server/sse", transport="sse", tool_allow_list=["add"]
    )
    down = await add_server(db, "down", f"http://127.0.0.1:{free_port()}/mcp")
    wrong_key = await add_server(db, "locked", f"{base}/mcp", api_key_value="not-the-key")
    off = await add_server(db, "off", f"{base}/mcp", enabled=False)
    await use(bare, docs, down, wrong_key, events, off)

    outcome, streamed = await bare.run(
        {
            "tool_calls": [
                call("docs__echo", "c1", text="hello"),
                call("events__add", "c2", a=2, b=3),
                call("docs__broken", "c3"),
                call("docs__picture", "c4"),
            ]
        },
        {"text": "Done."},
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    offered = bare.tool_names(0)
    mcp_tools = [n for n in offered if "__" in n]
    assert mcp_tools == [
        "docs__echo",
        "docs__add",
        "docs__broken",
        "docs__picture",
        "events__add",
    ]
    [echo_spec] = [t for t in bare.request(0)["tools"] if t["function"]["name"] == "docs__echo"]
    assert echo_spec["function"]["parameters"]["required"] == ["text"]

    results = {p["tool_call_id"]: p for kind, p in payloads(streamed) if kind == "part:tool"}
    assert results["c1"]["result"] == {"output": "echo: hello"}
    assert results["c1"]["mcp_server_config_id"] == str(docs)
    assert results["c2"]["result"] == 5 and results["c2"]["mcp_server_config_id"] == str(events)
    assert results["c3"]["is_error"] is True and "broken" in results["c3"]["result"]["error"]
    # The first image becomes a file of the chat, shown after the result.
    assert results["c4"]["result"]["output"] == "a caption\n[image attached as mcp-image.png]"
    files = [
        p for kind, p in payloads(streamed) if kind == "part:assistant" and p["type"] == "file"
    ]
    assert [(f["media_type"], f["name"]) for f in files] == [("image/png", "mcp-image.png")]
    # Stored as streamed.
    tool_rows = await bare.h.rows("tool")
    stored = {p["tool_call_id"]: p for r in tool_rows for p in r["content"]}
    assert stored["c1"]["mcp_server_config_id"] == str(docs)


async def test_plan_turns_keep_only_servers_allowed_in_plan_mode(
    bare: ToolTurn, db: Database, mcp_port: int
) -> None:
    base = f"http://127.0.0.1:{mcp_port}/mcp"
    allowed = await add_server(
        db, "reader", base, allow_in_plan_mode=True, tool_allow_list=["echo"]
    )
    barred = await add_server(db, "writer", base)
    await use(bare, allowed, barred, plan=True)
    outcome, _ = await bare.run({"text": "Planned."})
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert [n for n in bare.tool_names(0) if "__" in n] == ["reader__echo"]


@pytest.mark.agent_kinds("dispatcher")
async def test_a_server_whose_tool_list_changed_is_listed_again_before_the_next_step(
    bare: ToolTurn, db: Database
) -> None:
    # A server of its own: the tool it grows stays.
    with serve_process(SERVER_MAIN, "{port}", KEY) as port:
        await grow_turn(bare, db, f"http://127.0.0.1:{port}/mcp")


async def grow_turn(bare: ToolTurn, db: Database, base: str) -> None:
    docs = await add_server(db, "growing", base, tool_allow_list=["grow", "extra"])
    await use(bare, docs)
    outcome, streamed = await bare.run(
        {"tool_calls": [call("growing__grow", "c1")]},
        {"tool_calls": [call("growing__extra", "c2")]},
        {"text": "Grown."},
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert [n for n in bare.tool_names(0) if "__" in n] == ["growing__grow"]
    # The server said its list changed during the call: the next step offers the new tool.
    assert [n for n in bare.tool_names(1) if "__" in n] == ["growing__grow", "growing__extra"]
    results = {p["tool_call_id"]: p for kind, p in payloads(streamed) if kind == "part:tool"}
    assert results["c2"]["result"] == {"output": "an extra tool"}
    assert results["c2"]["mcp_server_config_id"] == str(docs)


# The published server, started from the environment's scripts (a local agent's sandbox
# shows the Python environment it runs from).
TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")


def declare(directory: Path, **servers: Any) -> None:
    """The workspace's .mcp.json, with the tests' server beside it."""
    shutil.copy(SERVER_MAIN, directory / "mcp_server_main.py")
    (directory / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))


WORKSPACE_SERVERS: dict[str, Any] = {
    "ws": {
        "command": sys.executable,
        "args": ["mcp_server_main.py", "stdio"],
        "env": {"MCP_TEST_VALUE": "from-mcp-json"},
    },
    "broken": {"command": "no-such-mcp-server-command"},
    "time": {"command": TIME_SERVER, "args": ["--local-timezone", "UTC"]},
}


async def test_the_model_calls_workspace_mcp_tools_through_the_agent(
    bound: ToolTurn, db: Database, mcp_port: int
) -> None:
    # And one the workspace reaches over HTTP.
    remote = {
        "type": "http",
        "url": f"http://127.0.0.1:{mcp_port}/mcp",
        "headers": {"X-Api-Key": KEY},
    }
    declare(bound.directory, **WORKSPACE_SERVERS, remote=remote)
    # A chat's server named like a workspace one: its echo wins over the workspace's.
    chat_server = await add_server(
        db, "ws", f"http://127.0.0.1:{mcp_port}/mcp", tool_allow_list=["echo"]
    )
    await use(bound, chat_server)
    convert = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    outcome, streamed = await bound.run(
        {
            "tool_calls": [
                call("ws__where", "c1"),
                call("time__convert_time", "c2", **convert),
                call("ws__echo", "c3", text="hi"),
                call("ws__picture", "c4"),
                call("ws__broken", "c5"),
                call("remote__add", "c6", a=2, b=3),
            ]
        },
        {"text": "Done."},
    )
    assert outcome.kind == OutcomeKind.done, outcome.error

    # Offered after the chat's MCP tools, the failed server left out.
    assert [n for n in bound.tool_names(0) if "__" in n] == [
        "ws__echo",
        "ws__add",
        "ws__broken",
        "ws__picture",
        "ws__secret",
        "ws__sleepy",
        "ws__grow",
        "ws__where",
        "ws__exit",
        "time__get_current_time",
        "time__convert_time",
        "remote__echo",
        "remote__add",
        "remote__broken",
        "remote__picture",
        "remote__secret",
        "remote__sleepy",
        "remote__grow",
    ]
    [spec] = [t for t in bound.request(0)["tools"] if t["function"]["name"] == "time__convert_time"]
    assert spec["function"]["parameters"]["required"] == [
        "source_timezone",
        "time",
        "target_timezone",
    ]

    results = {p["tool_call_id"]: p for kind, p in payloads(streamed) if kind == "part:tool"}
    # Run in the workspace, with the entry's environment.
    directory, value, _ = results["c1"]["result"]["output"].split()
    assert (directory, value) == (str(bound.directory), "from-mcp-json")
    assert results["c1"].get("mcp_server_config_id") is None
    converted = results["c2"]["result"]
    assert converted["target"]["timezone"] == "Asia/Tokyo"
    assert converted["target"]["datetime"].endswith("T21:00:00+09:00")
    assert converted["time_difference"] == "+9.0h"
    assert results["c3"]["result"] == {"output": "echo: hi"}
    assert results["c3"]["mcp_server_config_id"] == str(chat_server)
    assert results["c4"]["result"]["output"] == "a caption\n[image attached as mcp-image.png]"
    assert results["c5"]["is_error"] is True and "broken" in results["c5"]["result"]["error"]
    assert results["c6"]["result"] == 5
    files = [
        p for kind, p in payloads(streamed) if kind == "part:assistant" and p["type"] == "file"
    ]
    assert [(f["media_type"], f["name"]) for f in files] == [("image/png", "mcp-image.png")]

    # What the model read of them in its next call.
    sent = {
        m["tool_call_id"]: m["content"] for m in bound.request(1)["messages"] if m["role"] == "tool"
    }
    assert json.loads(sent["c1"]) == results["c1"]["result"]
    assert json.loads(sent["c2"])["target"]["datetime"] == converted["target"]["datetime"]
    # Stored as streamed.
    stored = {p["tool_call_id"]: p for r in await bound.h.rows("tool") for p in r["content"]}
    assert {k: stored[k]["result"] for k in results} == {k: results[k]["result"] for k in results}
    assert stored["c3"]["mcp_server_config_id"] == str(chat_server)
    assert stored["c2"].get("mcp_server_config_id") is None


@pytest.mark.agent_kinds("dispatcher")  # counts the operations the agent is sent
async def test_workspace_mcp_tools_are_listed_once_per_agent_not_planning_nor_exploring(
    bound: ToolTurn,
) -> None:
    conn = await bound.service.connection(bound.workspace.id, wait=5) if bound.workspace else None
    assert isinstance(conn, DispatcherConn)
    # Nothing declared: an empty listing, asked for again by the next turn.
    outcome, _ = await bound.run({"text": "Nothing yet."})
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert conn.calls.count(protocol.MCP_TOOLS) == 1

    declare(bound.directory, ws=WORKSPACE_SERVERS["ws"])
    for turn in range(2):
        await bound.h.say(f"again {turn}")
        outcome, _ = await bound.run({"text": "Listed."})
        assert outcome.kind == OutcomeKind.done, outcome.error
    assert conn.calls.count(protocol.MCP_TOOLS) == 2  # the second listing is kept
    assert "ws__where" in bound.tool_names(1) and "ws__where" in bound.tool_names(2)

    # Neither a plan turn nor an explore sub-agent lists them (nor asks the agent).
    await use(bound, plan=True)
    await bound.h.say("plan it")
    outcome, _ = await bound.run({"text": "Planned."})
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert not [n for n in bound.tool_names(3) if "__" in n]
    async with bound.h.db.write() as writing:
        await writing.execute(
            chats.update()
            .where(chats.c.id == bound.h.ctx.chat_id)
            .values(plan_mode=None, mode="explore")
        )
    await bound.h.say("explore it")
    outcome, _ = await bound.run({"text": "Explored."})
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert "read_file" in bound.tool_names(4)
    assert not [n for n in bound.tool_names(4) if "__" in n]
    assert conn.calls.count(protocol.MCP_TOOLS) == 2


async def test_a_workspace_mcp_file_that_fails_does_not_fail_the_turn(bound: ToolTurn) -> None:
    (bound.directory / ".mcp.json").write_text("{not json")
    outcome, _ = await bound.run({"text": "Fine."})
    assert outcome.kind == OutcomeKind.done, outcome.error
    declare(bound.directory, broken=WORKSPACE_SERVERS["broken"])
    await bound.h.say("again")
    outcome, _ = await bound.run(
        {"tool_calls": [call("broken__anything", "c1")]}, {"text": "Fine."}
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert not [n for n in bound.tool_names(1) if "__" in n]
    [result] = [p for r in await bound.h.rows("tool") for p in r["content"]]
    assert result["is_error"] is True and "not found" in result["result"]["error"]
