"""``/chats/{chat}/stream/desktop`` against a real server and real agents: a VNC client
completes the RFB handshake through it with the local agent (in bubblewrap when installed)
and the external one; the checks before the upgrade answer the reference's 400s."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatd.agent.desktop import NOT_INSTALLED
from chatd.store.chat_updates import set_workspace
from tests.helpers import Api, make_chat, seed_model_config
from tests.rfb import FRAMEBUFFER_UPDATE, RfbClient
from tests.workspace.agents import KINDS, ExternalAgent, RealAgents
from tests.workspace.support import TinyAgent, eventually_status, external_workspace

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WAIT = 60.0  # the first start of a display on a loaded machine


@pytest.fixture(scope="module")
async def model_config(real_agents: RealAgents) -> uuid.UUID:
    return await seed_model_config(real_agents.db)


@pytest.fixture
def installed() -> None:
    if shutil.which("Xvfb") is None or shutil.which("x11vnc") is None:
        pytest.skip("Xvfb and x11vnc are not installed")


async def chat_on(
    agents: RealAgents, model_config: uuid.UUID, workspace_id: uuid.UUID | None
) -> uuid.UUID:
    chat_id = await make_chat(agents.db, agents.admin, model_config)
    if workspace_id is not None:
        async with agents.db.write() as conn:
            await set_workspace(conn, agents.db.now(), chat_id, workspace_id)
    return chat_id


def desktop_url(agents: RealAgents, chat_id: uuid.UUID | str) -> str:
    base = "ws" + agents.url.removeprefix("http")
    return f"{base}/api/experimental/chats/{chat_id}/stream/desktop"


def opened(agents: RealAgents, chat_id: uuid.UUID | str, **headers: str) -> connect:
    return connect(
        desktop_url(agents, chat_id),
        additional_headers=headers or agents.admin.headers,
        proxy=None,
        open_timeout=WAIT,
        compression=None,
    )


async def refusal(agents: RealAgents, chat_id: uuid.UUID | str, **headers: str) -> tuple[int, Any]:
    """The status and JSON body the upgrade is refused with."""
    with pytest.raises(InvalidStatus) as refused:
        async with opened(agents, chat_id, **headers):
            pass
    response = refused.value.response
    return response.status_code, json.loads(bytes(response.body))


def rfb(ws: ClientConnection) -> RfbClient:
    async def read() -> bytes:
        message = await ws.recv()
        assert isinstance(message, bytes), message
        return message

    async def write(data: bytes) -> None:
        await ws.send(data)

    return RfbClient(read, write)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_vnc_client_through_the_stream(
    installed: None, real_agents: RealAgents, model_config: uuid.UUID, kind: str
) -> None:
    workspace = real_agents.workspace(kind)
    chat_id = await chat_on(real_agents, model_config, workspace.workspace_id)
    for _ in range(2):  # the second connection finds the display running
        async with opened(real_agents, chat_id) as ws:
            client = rfb(ws)
            with anyio.fail_after(WAIT):
                init = await client.handshake()
                assert (init.width, init.height) == (1280, 800)
                assert await client.request_update(init) == FRAMEBUFFER_UPDATE


async def test_two_clients_share_the_desktop(
    installed: None, real_agents: RealAgents, model_config: uuid.UUID
) -> None:
    chat_id = await chat_on(real_agents, model_config, real_agents.local.workspace_id)
    async with opened(real_agents, chat_id) as one, opened(real_agents, chat_id) as two:
        with anyio.fail_after(WAIT):
            first, second = await rfb(one).handshake(), await rfb(two).handshake()
        assert first == second


async def test_chat_without_a_workspace(real_agents: RealAgents, model_config: uuid.UUID) -> None:
    chat_id = await chat_on(real_agents, model_config, None)
    assert await refusal(real_agents, chat_id) == (400, {"message": "Chat has no workspace."})


async def test_unknown_chat(real_agents: RealAgents) -> None:
    status, body = await refusal(real_agents, uuid.uuid4())
    assert status == 404 and body["message"]


async def test_agent_disconnected(real_agents: RealAgents, model_config: uuid.UUID) -> None:
    async with httpx2.AsyncClient(base_url=real_agents.url, timeout=30) as http:
        workspace_id, token = await external_workspace(
            Api(http, real_agents.admin), real_agents.admin, name="gone"
        )
    async with TinyAgent("ws" + real_agents.url.removeprefix("http"), token):
        await eventually_status(real_agents.app, workspace_id, "connected")
    await eventually_status(real_agents.app, workspace_id, "disconnected")
    chat_id = await chat_on(real_agents, model_config, uuid.UUID(workspace_id))
    assert await refusal(real_agents, chat_id) == (
        400,
        {"message": 'Agent state is "disconnected", must be connected.'},
    )


@asynccontextmanager
async def agent_with(
    agents: RealAgents, root: Path, programs: dict[str, str]
) -> AsyncIterator[str]:
    """An external workspace whose agent's PATH holds only ``programs`` (name: shell
    script); its id, once the agent is connected."""
    async with httpx2.AsyncClient(base_url=agents.url, timeout=30) as http:
        workspace_id, token = await external_workspace(
            Api(http, agents.admin), agents.admin, name=root.name
        )
    (root / "ws").mkdir(parents=True)
    (root / "bin").mkdir()
    for name, script in programs.items():
        (root / "bin" / name).write_text(f"#!/bin/sh\n{script}\n")
        (root / "bin" / name).chmod(0o755)
    agent = ExternalAgent(
        agents.url,
        token,
        (root / "ws").resolve(),
        root / "agent.log",
        env={"PATH": str(root / "bin")},
    )
    await agent.start()
    try:
        await eventually_status(agents.app, workspace_id, "connected", within=WAIT)
        yield workspace_id
    finally:
        await agent.stop()


async def test_workspace_without_a_desktop(
    real_agents: RealAgents, model_config: uuid.UUID, tmp_path: Path
) -> None:
    async with agent_with(real_agents, tmp_path / "bare", {}) as workspace_id:
        chat_id = await chat_on(real_agents, model_config, uuid.UUID(workspace_id))
        assert await refusal(real_agents, chat_id) == (
            400,
            {"message": "Chat workspace has no desktop.", "detail": NOT_INSTALLED},
        )


async def test_desktop_that_fails_to_start(
    real_agents: RealAgents, model_config: uuid.UUID, tmp_path: Path
) -> None:
    broken = {"Xvfb": "echo 'no screens found' >&2; exit 1", "x11vnc": "exit 1"}
    async with agent_with(real_agents, tmp_path / "broken", broken) as workspace_id:
        chat_id = await chat_on(real_agents, model_config, uuid.UUID(workspace_id))
        status, body = await refusal(real_agents, chat_id)
    assert (status, body["message"]) == (500, "Failed to connect to agent desktop.")
    assert "the virtual display did not start" in body["detail"]
    assert "no screens found" in body["detail"]


async def test_closed_when_the_agent_goes(
    installed: None, real_agents: RealAgents, model_config: uuid.UUID
) -> None:
    agent = real_agents.external_agent
    chat_id = await chat_on(real_agents, model_config, real_agents.external.workspace_id)
    try:
        async with opened(real_agents, chat_id) as ws:
            with anyio.fail_after(WAIT):
                await rfb(ws).handshake()
            await agent.stop()  # it closes its desktop on the way out
            with anyio.fail_after(WAIT), pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    finally:
        if not agent.running:
            await agent.start()
        workspace_id = real_agents.external.workspace_id
        await eventually_status(real_agents.app, workspace_id, "connected", within=WAIT)
