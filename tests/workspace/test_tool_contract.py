"""The workspace tools against real agents, through the server's own Workspaces service.

The tool tests (tests/tools, and the tool turns of tests/engine) are the contract suite:
they run with every kind of agent, in-process Dispatchers and the real agents here (a local
workspace's agent started by the server, in bubblewrap when installed, and an external
``python -m chatd.agent``; see tests/workspace/agents.py). This module adds what only real
agents show: every tool of engine-behaviour §13.1 and the skill tools, called as a turn
calls them with the server's service in place of the tests' stand-in, and an agent killed in
the middle of a call, then back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chatd.engine.toolset import Toolset, run_call
from chatd.events.hub import EventHub
from chatd.llm.types import ToolCall
from chatd.store.chat_updates import set_workspace
from chatd.store.tables import chat_files, chats
from chatd.tools.builtin import builtin_registry
from chatd.tools.registry import ToolCallContext, ToolOutput
from chatd.tools.scope import ChatFacts, TurnScope
from chatd.tools.workspace_access import WorkspaceAccess
from chatd.workspace.agents import DISCONNECTED_DURING_CALL
from tests.helpers import make_chat, seed_model_config
from tests.tools.agents import Provisioned
from tests.tools.workspace_files import add_skill
from tests.workspace.agents import KINDS, RealAgents
from tests.workspace.support import eventually_status, wait_until

pytestmark = pytest.mark.anyio


@dataclass
class Chat:
    """A chat bound to a real workspace, calling tools as its turns do."""

    agents: RealAgents
    kind: str
    chat_id: uuid.UUID
    workspace: Provisioned
    access: WorkspaceAccess

    @property
    def directory(self) -> Path:
        return self.workspace.directory

    def new_turn(self, **options: Any) -> Chat:
        """The same chat in a later turn (a fresh way to the workspace)."""
        access = workspace_access(self.agents, self.chat_id, self.workspace, **options)
        return Chat(self.agents, self.kind, self.chat_id, self.workspace, access)

    async def run(self, name: str, /, **args: Any) -> ToolOutput:
        facts = ChatFacts(self.chat_id, self.agents.admin.id, self.agents.admin.org_id)
        toolset = Toolset.build(builtin_registry(), None, facts, has_skills=True)
        call = ToolCall(f"call_{name}", name, json.dumps(args))
        scope = TurnScope(facts, self.agents.db, self.access.hub, self.access)
        ctx = ToolCallContext(self.chat_id, self.agents.admin.id, call.id, scope)
        return await run_call(toolset, call, ctx)

    async def ok(self, name: str, /, **args: Any) -> dict[str, Any]:
        output = await self.run(name, **args)
        assert not output.is_error, output.text
        result: dict[str, Any] = json.loads(output.text)
        return result

    async def error(self, name: str, /, **args: Any) -> str:
        output = await self.run(name, **args)
        assert output.is_error, output.text
        return output.text

    async def recorded(self) -> tuple[uuid.UUID | None, uuid.UUID | None]:
        """The agent and build the chat's row names."""
        async with self.agents.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(chats.c.agent_id, chats.c.build_id).where(chats.c.id == self.chat_id)
                )
            ).one()
        return row.agent_id, row.build_id


def workspace_access(
    agents: RealAgents, chat_id: uuid.UUID, workspace: Provisioned, **options: Any
) -> WorkspaceAccess:
    """What a turn of the chat builds to reach its workspace (the server's service)."""
    return WorkspaceAccess(
        chat_id=chat_id,
        db=agents.db,
        hub=EventHub(),
        service=agents.service,
        workspace_id=workspace.workspace_id,
        **options,
    )


@pytest.fixture(scope="module")
async def model_config(real_agents: RealAgents) -> uuid.UUID:
    return await seed_model_config(real_agents.db)


@pytest.fixture(params=KINDS)
async def chat(
    request: pytest.FixtureRequest, real_agents: RealAgents, model_config: uuid.UUID
) -> AsyncIterator[Chat]:
    kind = str(request.param)
    workspace = await real_agents.pool(kind).provision(Path())
    chat_id = await make_chat(real_agents.db, real_agents.admin, model_config)
    async with real_agents.db.write() as conn:
        await set_workspace(conn, real_agents.db.now(), chat_id, workspace.workspace_id)
    access = workspace_access(real_agents, chat_id, workspace)
    yield Chat(real_agents, kind, chat_id, workspace, access)


async def test_every_tool_through_the_server(chat: Chat) -> None:
    assert await chat.ok("write_file", path="src/app.py", content="print('one')\n") == {
        "ok": True
    }
    read = await chat.ok("read_file", path="src/app.py")
    assert read["content"] == "     1\tprint('one')" and read["total_lines"] == 1
    edit = [{"path": "src/app.py", "edits": [{"old_text": "'one'", "new_text": "'two'"}]}]
    edited = await chat.ok("edit_files", files=edit)
    assert edited["ok"] is True and "+print('two')" in edited["files"][0]["diff"]
    ran = await chat.ok("execute", command="python3 src/app.py; pwd")
    assert ran["success"] is True and ran["output"].split() == ["two", str(chat.directory)]

    started = await chat.ok("execute", command="sleep 0.1; echo later", run_in_background=True)
    pid = started["background_process_id"]
    finished = await chat.ok("process_output", process_id=pid, wait_timeout="10s")
    assert finished["exit_code"] == 0 and finished["output"] == "later\n"
    long = await chat.ok("execute", command="sleep 600", timeout="100ms")
    assert long["exit_code"] == -1 and "timed out" in long["error"]
    listed = {p["process_id"]: p for p in (await chat.ok("process_list"))["processes"]}
    assert listed[pid]["running"] is False and listed[long["background_process_id"]]["running"]
    stopped = await chat.ok(
        "process_signal", process_id=long["background_process_id"], signal="terminate"
    )
    assert stopped["success"] is True
    ended = await chat.ok("process_output", process_id=long["background_process_id"])
    assert ended["exit_code"] == 143

    attached = await chat.ok("attach_file", path="src/app.py")
    async with chat.agents.db.read() as conn:
        data = (
            await conn.execute(
                sa.select(chat_files.c.data).where(
                    chat_files.c.id == uuid.UUID(attached["file_id"])
                )
            )
        ).scalar_one()
    assert bytes(data) == b"print('two')\n" and attached["size"] == 13

    skill = add_skill(chat.directory, "deploy", "Ship a release.", "Run make release.\n")
    (skill / "notes.txt").write_text("notes\n")
    assert (await chat.ok("read_skill", name="deploy"))["body"].strip() == "Run make release."
    assert await chat.ok("read_skill_file", name="deploy", path="notes.txt") == {
        "content": "notes\n"
    }
    # The chat names the agent and the connection it reached.
    conn = await chat.agents.conn(chat.workspace.workspace_id)
    assert await chat.recorded() == (chat.workspace.agent_id, conn.build_id)


async def test_an_agent_killed_mid_call_then_back(chat: Chat) -> None:
    mark = f"sleep 600.{uuid.uuid4().int % 10**6}"
    running = asyncio.create_task(chat.run("execute", command=mark, timeout="5m"))
    conn = await chat.agents.conn(chat.workspace.workspace_id)

    async def started() -> bool:
        listed = (await conn.call("process_list", {}))["processes"]
        return any(p["command"] == mark and p["running"] for p in listed)

    await wait_until(started, 30)
    listed = (await conn.call("process_list", {}))["processes"]
    [process] = [p for p in listed if p["command"] == mark]
    await kill_agent(chat)
    try:
        output = await asyncio.wait_for(running, 30)
        assert output.is_error and output.text == DISCONNECTED_DURING_CALL
        if chat.kind == "external":
            # Nobody starts an external agent but its owner: the model is told so.
            text = await chat.new_turn(connect_wait=0.2).error("execute", command="true")
            assert "chatd agent" in text and "start_workspace" in text
            await chat.agents.external_agent.start()
            await eventually_status(chat.agents.app, chat.workspace.workspace_id, "connected")
        back = await chat.run("execute", command="echo back")
        assert not back.is_error and json.loads(back.text)["output"] == "back\n"
        after = await chat.agents.conn(chat.workspace.workspace_id)
        assert after is not conn and after.build_id != conn.build_id
        assert await chat.recorded() == (chat.workspace.agent_id, after.build_id)
    finally:
        if chat.kind == "external":  # its command outlived it, in a session of its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process["pid"], signal.SIGKILL)


async def kill_agent(chat: Chat) -> None:
    """SIGKILL the workspace's agent (the server restarts a local one by itself)."""
    if chat.kind == "external":
        await chat.agents.external_agent.kill()
        return
    pid = chat.agents.service.launcher.pid(chat.workspace.workspace_id)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
