"""How tools reach the chat's workspace agent: no workspace, no service, a stopped agent, an
agent restarted between two calls, and the agent and build recorded on the chat.

On the stand-in service, whose agents the tests stop and restart at will; the same with real
agents is in tests/workspace/test_tool_contract.py."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from chatd.store.tables import chats
from chatd.tools.workspace_access import NO_WORKSPACE, WORKSPACES_OFF
from tests.tools.agents import DispatcherConn
from tests.tools.conftest import ToolEnv

pytestmark = [pytest.mark.anyio, pytest.mark.agent_kinds("dispatcher")]


async def _chat(env: ToolEnv) -> sa.Row[tuple[object, ...]]:
    async with env.db.read() as conn:
        return (
            await conn.execute(
                sa.select(chats.c.workspace_id, chats.c.agent_id, chats.c.build_id).where(
                    chats.c.id == env.chat_id
                )
            )
        ).one()


async def test_no_workspace_tells_the_model_to_create_one(bare: ToolEnv) -> None:
    for name, args in [
        ("read_file", {"path": "a"}),
        ("write_file", {"path": "a", "content": ""}),
        ("execute", {"command": "true"}),
        ("process_list", {}),
        ("attach_file", {"path": "a"}),
    ]:
        text = await bare.error(name, **args)
        assert text == NO_WORKSPACE
        assert "create_workspace" in text and "list_templates" in text


async def test_without_the_workspaces_service(env: ToolEnv) -> None:
    off = env.new_turn(service=None)
    assert await off.error("execute", command="true") == WORKSPACES_OFF
    assert await off.error("list_templates") == WORKSPACES_OFF
    assert await off.error("create_workspace", template_id=str(env.workspace.id)) == WORKSPACES_OFF  # type: ignore[union-attr]


async def test_a_stopped_agent_suggests_start_workspace(env: ToolEnv) -> None:
    assert env.workspace is not None
    env.service.stop(env.workspace.id)
    turn = env.new_turn(connect_wait=0.05)
    text = await turn.error("execute", command="true")
    assert "disconnected" in text and "start_workspace" in text


async def test_the_connection_is_kept_and_the_agent_recorded(env: ToolEnv) -> None:
    assert env.workspace is not None
    await env.ok("execute", command="true")
    await env.ok("process_list")
    assert env.service.connections == 1
    conn = env.workspace.conn
    assert isinstance(conn, DispatcherConn) and conn.calls == ["process_start", "process_list"]
    row = await _chat(env)
    assert (row.workspace_id, row.agent_id, row.build_id) == (
        env.workspace.id,
        conn.agent_id,
        conn.build_id,
    )


async def test_an_agent_restarted_between_two_calls_just_works(env: ToolEnv) -> None:
    assert env.workspace is not None
    (env.directory / "a.txt").write_text("before\n")
    await env.ok("read_file", path="a.txt")
    first = env.workspace.conn
    assert first is not None
    env.service.restart(env.workspace.id)
    assert first.closed
    assert (await env.ok("read_file", path="a.txt"))["lines_read"] == 1
    second = env.workspace.conn
    assert second is not None and second is not first and not second.closed
    assert env.service.connections == 2
    row = await _chat(env)
    assert row.build_id == second.build_id != first.build_id
    assert row.agent_id == second.agent_id


async def test_an_agent_gone_mid_call_is_an_error_result(env: ToolEnv) -> None:
    assert env.workspace is not None
    await env.ok("process_list")
    conn = env.workspace.conn
    assert isinstance(conn, DispatcherConn)
    conn.called.clear()
    running = asyncio.create_task(env.run("execute", command="sleep 20", timeout="30s"))
    await conn.called.wait()
    assert conn.calls[-1] == "process_start"
    env.service.stop(env.workspace.id)
    output = await running
    assert output.is_error and output.text == "the workspace agent disconnected during the call"
    # The next call waits for the agent, which does not come back in time.
    text = await env.new_turn(connect_wait=0.05).error("process_list")
    assert "start_workspace" in text
