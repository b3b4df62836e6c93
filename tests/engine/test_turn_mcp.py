"""Turns with the chat's MCP servers (engine-behaviour §17): a real MCP server process on a
loopback port, the shipped fake provider calling its tools. A server that is down or refuses
the key is skipped and the turn goes on; plan turns keep only servers allowed in plan mode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind
from chatd.testing import FakeProvider, serve_fake
from tests.engine.mcp_helpers import KEY, SERVER_MAIN, add_server, free_port, serve_process, use
from tests.engine.tool_turns import ToolTurn, call, tool_turn
from tests.engine.turn_fakes import payloads
from tests.tools.agents import AgentPool

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def mcp_port() -> Iterator[int]:
    with serve_process(SERVER_MAIN, "{port}", KEY) as port:
        yield port


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeProvider, str]]:
    provider = FakeProvider()
    async with serve_fake(provider) as url:
        yield provider, url


@pytest.fixture
async def bare(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    agent_pool: AgentPool,
    fake: tuple[FakeProvider, str],
) -> AsyncIterator[ToolTurn]:
    made = await tool_turn(db, settings, tmp_path, agent_pool, *fake, bound=False)
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
