"""``python -m chatd.agent`` as a real process dialling a test server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from chatd.agent import protocol
from tests.agent.conftest import members, running_members
from tests.agent.test_client import TOKEN, FakeServer, Peer, fake_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


AGENT = ("-m", "chatd.agent")
# The same program behind the chatd command.
CHATD_AGENT = ("-m", "chatd.cli.main", "agent")


async def start_agent(
    url: str | None,
    workspace: Path,
    home: Path,
    *extra: str,
    token: str | None = TOKEN,
    program: tuple[str, ...] = AGENT,
) -> asyncio.subprocess.Process:
    env = {**os.environ, "HOME": str(home)}
    env.pop(protocol.URL_ENV, None)
    env.pop(protocol.TOKEN_ENV, None)
    if token is not None:
        env[protocol.TOKEN_ENV] = token
    if url is not None:
        env[protocol.URL_ENV] = url
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *program,
        "--dir",
        str(workspace),
        "--log-level",
        "debug",
        "--max-retry-delay",
        "0.05",
        *extra,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def exit_status(agent: asyncio.subprocess.Process) -> tuple[int, str]:
    with anyio.fail_after(60):
        assert agent.stderr is not None
        log = (await agent.stderr.read()).decode()
        return await agent.wait(), log


async def started_sleep(peer: Peer) -> int:
    """Start a command that outlives the test unless the agent kills it; its group."""
    answer = await peer.call(1, "process_start", command="sleep 100 & sleep 100")
    pgid = int(answer["result"]["pid"])
    await running_members(pgid, 3)
    return pgid


@pytest.mark.parametrize("program", [AGENT, CHATD_AGENT], ids=["python-m", "chatd"])
async def test_serves_and_exits_on_sigterm(
    workspace: Path, home: Path, program: tuple[str, ...]
) -> None:
    async with fake_server() as server:
        agent = await start_agent(server.url, workspace, home, program=program)
        try:
            peer = await server.next_peer()
            assert peer.hello["directory"] == str(workspace)
            assert peer.hello["home"] == str(home)
            shown = await peer.call(
                9,
                "process_start",
                command='echo "${CHATD_AGENT_TOKEN-hidden} ${CHATD_AGENT_URL-hidden}"',
                wait_ms=30_000,
            )
            assert shown["result"]["output"] == "hidden hidden\n"
            pgid = await started_sleep(peer)
            agent.send_signal(signal.SIGTERM)
            status, log = await exit_status(agent)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    assert status == 0, log
    assert members(pgid) == 0
    assert "connected to ws://127.0.0.1" in log
    assert TOKEN not in log


async def test_exits_when_stdin_ends(workspace: Path, home: Path) -> None:
    async with fake_server() as server:
        agent = await start_agent(server.url, workspace, home, "--exit-on-stdin-eof")
        try:
            peer = await server.next_peer()
            pgid = await started_sleep(peer)
            assert agent.stdin is not None
            agent.stdin.close()
            status, log = await exit_status(agent)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    assert status == 0, log
    assert "end of stdin" in log
    assert members(pgid) == 0


async def test_token_from_the_command_line_and_retries(workspace: Path, home: Path) -> None:
    async with fake_server() as probe:
        url = probe.url
    agent = await start_agent(None, workspace, home, "--url", url, "--token", TOKEN, token=None)
    try:
        assert agent.stderr is not None
        with anyio.fail_after(60):
            while b"retry in" not in await agent.stderr.readline():
                pass
        port = int(url.rsplit(":", 1)[1])
        async with fake_server(port=port) as server:
            peer = await server.next_peer()
            assert peer.hello["type"] == "hello"
            agent.send_signal(signal.SIGINT)
            status, log = await exit_status(agent)
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
    assert status == 0, log


@pytest.mark.parametrize(
    ("url", "token", "extra", "says"),
    [
        ("http://127.0.0.1:9", None, (), "token"),
        (None, TOKEN, (), "URL"),
        ("ftp://127.0.0.1:9", TOKEN, (), "ftp"),
        ("http://127.0.0.1:9", TOKEN, ("--dir", "/nonexistent"), "not a directory"),
        ("http://127.0.0.1:9", TOKEN, ("--desktop-size", "800"), "not WIDTHxHEIGHT"),
        ("http://127.0.0.1:9", TOKEN, ("--desktop-size", "800x600x7"), "depth of 7"),
    ],
)
async def test_usage_errors(
    workspace: Path,
    home: Path,
    url: str | None,
    token: str | None,
    extra: tuple[str, ...],
    says: str,
) -> None:
    agent = await start_agent(url, workspace, home, *extra, token=token)
    status, log = await exit_status(agent)
    assert status == 2
    assert says in log


async def test_refused_token_exits_3(workspace: Path, home: Path) -> None:
    async with fake_server() as server:
        agent = await start_agent(server.url, workspace, home, token="not-the-token")
        try:
            status, log = await exit_status(agent)
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
    assert status == 3, log
    assert "HTTP 401" in log
    assert isinstance(server, FakeServer) and server.dials == 10
