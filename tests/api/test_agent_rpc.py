"""The workspace agents' WebSocket on a real server: only agent tokens open it, the hello is
recorded, calls go round trip, a newer connection replaces the older, a disconnect fails the
calls waiting and marks the agent disconnected."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatd.agent.protocol import AGENT_PATH, TOKEN_HEADER
from chatd.api.deps import SESSION_COOKIE
from chatd.store.db import Database
from chatd.workspace.agents import DISCONNECTED_DURING_CALL
from chatd.workspace.conn import AgentOpError, AgentUnavailable
from chatd.workspace.service import Workspaces
from tests.helpers import Api, ApiUser
from tests.workspace.support import (
    WAIT,
    AgentFailure,
    TinyAgent,
    eventually_status,
    external_workspace,
    serving,
    wait_until,
    workspace,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def url(app: FastAPI) -> AsyncIterator[str]:
    async with serving(app) as base:
        yield base


@pytest.fixture
def service(app: FastAPI) -> Workspaces:
    found: Workspaces = app.state.workspaces
    return found


async def refused_status(url: str, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url + AGENT_PATH, additional_headers=headers, proxy=None):
            pass
    return refused.value.response.status_code


async def test_only_an_agent_token_opens_it(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    for headers in (
        {},
        {TOKEN_HEADER: ""},
        {TOKEN_HEADER: "chatd-agent-" + "x" * 43},
        {TOKEN_HEADER: token + "x"},
        {TOKEN_HEADER: member.token},  # a user's token
        {"Cookie": f"{SESSION_COOKIE}={member.token}"},
    ):
        assert await refused_status(url, headers) == 401, headers
    assert service.agents.get(uuid.UUID(workspace_id)) is None
    assert (await workspace(app, workspace_id)).agent.status == "connecting"


async def test_hello_is_recorded_and_calls_go_round_trip(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    before = await workspace(app, workspace_id)

    async def handler(op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "read_file" and args["path"] == "missing":
            raise AgentFailure("not_found", "no such file: missing")
        return {"op": op, "args": args}

    async with TinyAgent(url, token, handler):
        conn = await service.connection(uuid.UUID(workspace_id), wait=WAIT)
        assert conn.workspace_id == uuid.UUID(workspace_id)
        assert conn.agent_id == before.agent.id
        assert (conn.directory, conn.home) == ("/work/tiny", "/home/tiny")
        assert (conn.operating_system, conn.version) == ("linux", "1")
        found = await eventually_status(app, workspace_id, "connected")
        assert found.agent.directory == "/work/tiny"
        assert found.agent.operating_system == "linux" and found.agent.version == "1"
        assert await conn.call("context", {}) == {"op": "context", "args": {}}
        # Calls at once, answered each to its caller.
        results = await asyncio.gather(
            *(conn.call("read_file", {"path": f"f{i}"}) for i in range(20))
        )
        assert [r["args"]["path"] for r in results] == [f"f{i}" for i in range(20)]
        with pytest.raises(AgentOpError) as failed:
            await conn.call("read_file", {"path": "missing"})
        assert (failed.value.code, failed.value.message) == ("not_found", "no such file: missing")
    await eventually_status(app, workspace_id, "disconnected")
    assert conn.closed
    with pytest.raises(AgentUnavailable):
        await conn.call("context", {})


async def test_each_connection_gets_a_build_id(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces, db: Database
) -> None:
    workspace_id, token = await external_workspace(api, member)
    ids = []
    for _ in range(2):
        async with TinyAgent(url, token):
            conn = await service.agents.wait(uuid.UUID(workspace_id), WAIT)
            assert conn is not None
            ids.append(conn.build_id)
            row = await db.run_read(_row, uuid.UUID(workspace_id))
            assert row["build_id"] == conn.build_id
        await eventually_status(app, workspace_id, "disconnected")
    assert ids[0] != ids[1]


async def _row(conn: Any, workspace_id: uuid.UUID) -> dict[str, Any]:
    from chatd.store.workspaces import get_workspace

    row = await get_workspace(conn, workspace_id)
    assert row is not None
    return row


async def test_a_newer_connection_replaces_the_older(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    key = uuid.UUID(workspace_id)
    async with TinyAgent(url, token) as first:
        old = await service.connection(key, wait=WAIT)
        async with TinyAgent(url, token) as second:
            await wait_until(lambda: service.agents.get(key) not in (old, None))
            new = service.agents.get(key)
            assert new is not None
            assert new.build_id != old.build_id
            assert old.closed
            assert first.ws is not None
            await asyncio.wait_for(first.ws.wait_closed(), WAIT)
            assert first.ws.close_code == 1000
            # The old socket's end does not mark the agent disconnected.
            assert (await workspace(app, workspace_id)).agent.status == "connected"
            assert await new.call("context", {}) == {"op": "context", "args": {}}
            assert second.requests and not first.requests
        await eventually_status(app, workspace_id, "disconnected")


async def test_a_disconnect_fails_the_calls_waiting(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    started = asyncio.Event()

    async def forever(op: str, args: dict[str, Any]) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    agent = await TinyAgent(url, token, forever).open()
    conn = await service.connection(uuid.UUID(workspace_id), wait=WAIT)
    call = asyncio.create_task(conn.call("process_start", {"command": "sleep 1000"}))
    await asyncio.wait_for(started.wait(), WAIT)
    await agent.close()
    with pytest.raises(AgentUnavailable) as gone:
        await asyncio.wait_for(call, WAIT)
    assert gone.value.message == DISCONNECTED_DURING_CALL
    await eventually_status(app, workspace_id, "disconnected")
    assert service.agents.get(uuid.UUID(workspace_id)) is None


async def test_a_cancelled_call_cancels_on_the_agent(
    url: str, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    started = asyncio.Event()

    async def slow(op: str, args: dict[str, Any]) -> dict[str, Any]:
        if op == "process_output":
            started.set()
            await asyncio.Event().wait()
        return {"ok": True}

    async with TinyAgent(url, token, slow) as agent:
        conn = await service.connection(uuid.UUID(workspace_id), wait=WAIT)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await conn.call("process_output", {"process_id": "p1", "wait_ms": 60000})
        await wait_until(lambda: bool(agent.cancelled))
        assert agent.cancelled == [agent.requests[0]["id"]]
        assert await conn.call("context", {}) == {"ok": True}  # the connection goes on


@pytest.mark.parametrize(
    "hello",
    [
        "not json",
        '{"type": "response", "id": 1, "result": {}}',
        '{"type": "hello", "directory": 5}',
        '{"type": "hello"}',
        "[1, 2]",
    ],
)
async def test_a_bad_hello_is_closed_with_1008(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces, hello: str
) -> None:
    workspace_id, token = await external_workspace(api, member)
    async with connect(
        url + AGENT_PATH, additional_headers={TOKEN_HEADER: token}, proxy=None
    ) as ws:
        await ws.send(hello)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), WAIT)
        assert ws.close_code == 1008
    assert service.agents.get(uuid.UUID(workspace_id)) is None
    assert (await workspace(app, workspace_id)).agent.status == "connecting"


async def test_a_bad_frame_later_closes_with_1008(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    async with TinyAgent(url, token) as agent:
        await service.connection(uuid.UUID(workspace_id), wait=WAIT)
        assert agent.ws is not None
        await agent.ws.send('{"type": "response", "id": "one", "result": {}}')
        await asyncio.wait_for(agent.ws.wait_closed(), WAIT)
        assert agent.ws.close_code == 1008
    await eventually_status(app, workspace_id, "disconnected")


async def test_an_external_agent_that_is_away(
    app: FastAPI, api: Api, member: ApiUser, service: Workspaces, db: Database
) -> None:
    workspace_id, _ = await external_workspace(api, member)
    key = uuid.UUID(workspace_id)
    # Still expected: the caller waits, then hears how long it waited.
    with pytest.raises(AgentUnavailable) as away:
        await service.connection(key, wait=0.05)
    assert "did not connect within 0.05 seconds" in away.value.message
    assert "start_workspace" in away.value.message
    # Past the connect timeout it is reported as timed out, and not waited for.
    later = db.now() + dt.timedelta(seconds=service.connect_timeout + 1)
    db.clock = lambda: later
    assert (await workspace(app, workspace_id)).agent.status == "timeout"
    with pytest.raises(AgentUnavailable) as timed_out:
        await service.connection(key, wait=WAIT)
    assert timed_out.value.message.startswith("the workspace agent timed out connecting")


async def test_an_agent_of_a_deleted_workspace_is_cut_off(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    workspace_id, token = await external_workspace(api, member)
    async with TinyAgent(url, token) as agent:
        await service.connection(uuid.UUID(workspace_id), wait=WAIT)
        r = await api.request("DELETE", f"/api/v2/workspaces/{workspace_id}", member)
        assert r.status_code == 204
        assert agent.ws is not None
        await asyncio.wait_for(agent.ws.wait_closed(), WAIT)
    assert await refused_status(url, {TOKEN_HEADER: token}) == 401
    with pytest.raises(AgentUnavailable):
        await service.connection(uuid.UUID(workspace_id), wait=0.05)
