"""MCP servers that fail, against real processes (engine-behaviour §17): one that is down
(refused port), one that accepts and never answers, one that answers malformed JSON, and a
tool call that never returns. The turn never fails: a server that cannot be listed within
``mcp_list_timeout`` is left out, a call that does not answer within ``mcp_call_timeout`` is
an error result the model reads, and so are bad arguments for an MCP tool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind
from tests.engine.mcp_helpers import (
    KEY,
    MISBEHAVING_MAIN,
    SERVER_MAIN,
    add_server,
    free_port,
    serve_process,
    use,
)
from tests.engine.tool_turns import ToolTurn, call
from tests.engine.turn_fakes import payloads

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def mcp_port() -> Iterator[int]:
    with serve_process(SERVER_MAIN, "{port}", KEY) as port:
        yield port


@pytest.fixture(scope="module")
def hang_port() -> Iterator[int]:
    with serve_process(MISBEHAVING_MAIN, "hang", "{port}") as port:
        yield port


@pytest.fixture(scope="module")
def garbage_port() -> Iterator[int]:
    with serve_process(MISBEHAVING_MAIN, "garbage", "{port}") as port:
        yield port


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Short enough that a test waits little on the servers that never answer; a call that
    # does answer must still make it on a loaded machine (1 s was missed under CI load).
    settings.mcp_list_timeout = 1.0
    settings.mcp_call_timeout = 3.0
    return settings


def tool_message(turn: ToolTurn, index: int, call_id: str) -> Any:
    """What the model read as the result of ``call_id`` in its ``index``-th request."""
    [message] = [
        m
        for m in turn.request(index)["messages"]
        if m["role"] == "tool" and m["tool_call_id"] == call_id
    ]
    return json.loads(message["content"])


def results(streamed: list[Any]) -> dict[str, Any]:
    return {p["tool_call_id"]: p for kind, p in payloads(streamed) if kind == "part:tool"}


@pytest.mark.agent_kinds("dispatcher")
async def test_servers_that_cannot_be_listed_are_left_out_and_the_turn_goes_on(
    bare: ToolTurn, db: Database, mcp_port: int, hang_port: int, garbage_port: int
) -> None:
    docs = await add_server(db, "docs", f"http://127.0.0.1:{mcp_port}/mcp")
    down = await add_server(db, "down", f"http://127.0.0.1:{free_port()}/mcp")
    hangs = await add_server(db, "hangs", f"http://127.0.0.1:{hang_port}/mcp")
    hangs_sse = await add_server(
        db, "hangs_sse", f"http://127.0.0.1:{hang_port}/sse", transport="sse"
    )
    garbage = await add_server(db, "garbage", f"http://127.0.0.1:{garbage_port}/mcp")
    await use(bare, down, hangs, docs, hangs_sse, garbage)

    outcome, streamed = await bare.run(
        {"tool_calls": [call("docs__echo", "c1", text="still here")]}, {"text": "Done."}
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    # Only the server that answered offers tools; the model was asked all the same.
    assert [n for n in bare.tool_names(0) if "__" in n] == [
        "docs__echo",
        "docs__add",
        "docs__broken",
        "docs__picture",
    ]
    assert results(streamed)["c1"]["result"] == {"output": "echo: still here"}
    assert tool_message(bare, 1, "c1") == {"output": "echo: still here"}


@pytest.mark.agent_kinds("dispatcher")
async def test_a_call_that_never_answers_is_an_error_result_within_the_call_timeout(
    bare: ToolTurn, db: Database, mcp_port: int
) -> None:
    docs = await add_server(
        db, "docs", f"http://127.0.0.1:{mcp_port}/mcp", tool_allow_list=["sleepy", "echo"]
    )
    await use(bare, docs)
    outcome, streamed = await bare.run(
        {"tool_calls": [call("docs__sleepy", "c1"), call("docs__echo", "c2", text="hi")]},
        {"text": "It timed out."},
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    got = results(streamed)
    assert got["c1"]["is_error"] is True
    assert got["c1"]["result"] == {"error": "MCP server docs did not answer within 3 s"}
    assert got["c2"]["result"] == {"output": "echo: hi"}  # the other call was not held up
    assert tool_message(bare, 1, "c1") == {"error": "MCP server docs did not answer within 3 s"}


@pytest.mark.agent_kinds("dispatcher")
async def test_bad_arguments_for_an_mcp_tool_are_invalid_json_input(
    bare: ToolTurn, db: Database, mcp_port: int
) -> None:
    docs = await add_server(db, "docs", f"http://127.0.0.1:{mcp_port}/mcp")
    await use(bare, docs)
    outcome, streamed = await bare.run(
        {
            "tool_calls": [
                {"id": "c1", "name": "docs__echo", "args_json": '{"text": '},
                {"id": "c2", "name": "docs__echo", "args_json": '["text"]'},
            ]
        },
        {"text": "Oops."},
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    got = results(streamed)
    for call_id in ("c1", "c2"):
        assert got[call_id]["is_error"] is True
        assert got[call_id]["result"]["error"].startswith("invalid JSON input: ")
        assert got[call_id]["mcp_server_config_id"] == str(docs)
    # The call parts name the server as well as the results, streamed and stored.
    calls = [p for kind, p in payloads(streamed) if kind == "part:assistant"]
    calls = [p for p in calls if p["type"] == "tool-call" and p.get("args_delta") is None]
    assert {p["tool_call_id"]: p["mcp_server_config_id"] for p in calls} == {
        "c1": str(docs),
        "c2": str(docs),
    }
    [assistant, *_] = await bare.h.rows("assistant")
    stored = [p for p in assistant["content"] if p["type"] == "tool-call"]
    assert [p["mcp_server_config_id"] for p in stored] == [str(docs), str(docs)]
