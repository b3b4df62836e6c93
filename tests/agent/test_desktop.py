"""The desktop stream operation: a real Xvfb and x11vnc, reached through a test channel."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import socket
import stat
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chatd.agent import display, groups, protocol, streams
from chatd.agent.desktop import NOT_INSTALLED, Running
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.display import Geometry, lock_file
from chatd.agent.errors import OpError
from tests.rfb import FRAMEBUFFER_UPDATE, RfbClient

pytestmark = pytest.mark.anyio

WAIT = 30.0


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The agent runs on uvloop where it is installed: the desktop works on both loops."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def installed() -> None:
    if shutil.which("Xvfb") is None or shutil.which("x11vnc") is None:
        pytest.skip("Xvfb and x11vnc are not installed")


@pytest.fixture
async def agent(installed: None, workspace: Path, home: Path) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(workspace, home=home)
    yield dispatcher
    await dispatcher.close()


class Channel(streams.Channel):
    """The server's end of one stream, in memory."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_agent: asyncio.Queue[bytes] = asyncio.Queue()
        super().__init__(self.events.put, self._received)

    async def _received(self, data: bytes) -> None:
        assert 0 < len(data) <= 64 * 1024
        await self.from_agent.put(data)

    async def to_agent(self, data: bytes) -> None:
        self.feed(data)

    def rfb(self) -> RfbClient:
        return RfbClient(self.from_agent.get, self.to_agent)


class Stream:
    """The desktop operation running on a :class:`Channel`."""

    def __init__(self, agent: Dispatcher) -> None:
        self.channel = Channel()
        self.task: asyncio.Task[dict[str, Any]] = asyncio.create_task(self._run(agent))

    async def _run(self, agent: Dispatcher) -> dict[str, Any]:
        return await agent.stream(protocol.DESKTOP, {}, self.channel)

    async def ready(self) -> dict[str, Any]:
        with anyio.fail_after(WAIT):
            return await self.channel.events.get()

    async def end(self) -> dict[str, Any]:
        """The server sends no more: VNC closes the connection and the operation ends."""
        self.channel.feed(b"")
        with anyio.fail_after(WAIT):
            return await self.task


def desktop(agent: Dispatcher) -> Running:
    running = agent.desktop.running
    assert running is not None
    return running


async def test_handshake_and_a_framebuffer_update(agent: Dispatcher) -> None:
    stream = Stream(agent)
    assert await stream.ready() == {"ready": True, "width": 1280, "height": 800}
    client = stream.channel.rfb()
    with anyio.fail_after(WAIT):
        init = await client.handshake()
        assert re.fullmatch(rb"RFB 003\.00\d\n", client.version)
        assert (init.width, init.height) == (1280, 800)
        assert await client.request_update(init) == FRAMEBUFFER_UPDATE
    assert await stream.end() == {"ok": True}


async def test_processes_are_kept_between_connections_and_killed_on_close(
    agent: Dispatcher,
) -> None:
    first = Stream(agent)
    await first.ready()
    running = desktop(agent)
    await first.end()
    second = Stream(agent)
    await second.ready()
    assert desktop(agent) is running
    assert running.alive
    await second.end()
    directory = running.directory
    await agent.close()
    assert agent.desktop.running is None
    assert not running.alive
    assert not groups.alive(running.xvfb.pid) and not groups.alive(running.vnc.pid)
    assert not directory.exists()
    assert not lock_left(running.display)


async def test_two_connections_at_once(agent: Dispatcher) -> None:
    one, two = Stream(agent), Stream(agent)
    await one.ready()
    await two.ready()
    with anyio.fail_after(WAIT):
        await one.channel.rfb().handshake()
        await two.channel.rfb().handshake()
    assert await one.end() == {"ok": True}
    assert await two.end() == {"ok": True}


async def test_cancelled_by_the_server(agent: Dispatcher) -> None:
    stream = Stream(agent)
    await stream.ready()
    running = desktop(agent)
    stream.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stream.task
    again = Stream(agent)
    await again.ready()
    assert desktop(agent) is running  # still running for the next connection
    await again.end()


async def test_started_again_when_its_processes_died(agent: Dispatcher) -> None:
    first = Stream(agent)
    await first.ready()
    running = desktop(agent)
    await first.end()
    await groups.kill(running.vnc.pid)
    await running.vnc.wait()
    second = Stream(agent)
    await second.ready()
    restarted = desktop(agent)
    assert restarted is not running and restarted.alive
    assert not groups.alive(running.xvfb.pid)  # the old display was stopped
    with anyio.fail_after(WAIT):
        await second.channel.rfb().handshake()
    await second.end()


async def test_stopped_when_unused(agent: Dispatcher) -> None:
    agent.desktop.idle_timeout = 0.05
    stream = Stream(agent)
    await stream.ready()
    running = desktop(agent)
    await stream.end()
    await stopped(agent)
    assert not groups.alive(running.xvfb.pid) and not groups.alive(running.vnc.pid)
    assert not running.directory.exists()
    again = Stream(agent)  # and it starts again on demand
    await again.ready()
    assert desktop(agent).alive
    await again.end()


async def test_nothing_listens_on_the_network(agent: Dispatcher) -> None:
    stream = Stream(agent)
    await stream.ready()
    running = desktop(agent)
    assert stat.S_IMODE(running.directory.stat().st_mode) == 0o700
    assert running.socket.parent == running.directory
    for pid in (running.xvfb.pid, running.vnc.pid):
        assert tcp_listeners(pid) == set()
    assert abstract_x_socket(running.display) is False
    await stream.end()


async def test_the_display_admits_only_its_cookie(agent: Dispatcher) -> None:
    stream = Stream(agent)
    await stream.ready()
    running = desktop(agent)
    cookie = (running.directory / "Xauthority").read_bytes()[-16:]
    assert await x_connect(running.display, b"", b"") == 0  # refused
    assert await x_connect(running.display, b"MIT-MAGIC-COOKIE-1", cookie) == 1
    await stream.end()


async def test_size_is_settable(installed: None, workspace: Path) -> None:
    agent = Dispatcher(workspace, desktop_geometry=Geometry.parse("640x480"))
    try:
        stream = Stream(agent)
        assert await stream.ready() == {"ready": True, "width": 640, "height": 480}
        with anyio.fail_after(WAIT):
            init = await stream.channel.rfb().handshake()
        assert (init.width, init.height) == (640, 480)
        assert await stream.end() == {"ok": True}
    finally:
        await agent.close()


@pytest.mark.parametrize("hidden", ["Xvfb", "x11vnc"])
async def test_missing_binaries_are_unavailable(
    workspace: Path, tmp_path: Path, hidden: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in {"Xvfb", "x11vnc"} - {hidden}:
        (bin_dir / name).symlink_to("/bin/true")
    agent = Dispatcher(workspace, env={"PATH": str(bin_dir)})
    try:
        with pytest.raises(OpError) as caught:
            await agent.stream(protocol.DESKTOP, {}, Channel())
        assert caught.value.code == protocol.UNAVAILABLE
        assert caught.value.message == NOT_INSTALLED
    finally:
        await agent.close()


def test_geometry() -> None:
    assert Geometry.parse("1024x768") == Geometry(1024, 768, 24)
    assert Geometry.parse("800x600x16").screen() == "800x600x16"
    for bad in ("1024", "axb", "1x1", "800x600x7", "99999x600"):
        with pytest.raises(ValueError):
            Geometry.parse(bad)


async def stopped(agent: Dispatcher) -> None:
    """Wait until the desktop has stopped (polled: nothing signals it)."""
    with anyio.fail_after(WAIT):
        for _ in itertools.count():
            if agent.desktop.running is None:
                return
            await anyio.sleep(0.01)


def lock_left(display: int) -> bool:
    return lock_file(display).exists()


def tcp_listeners(pid: int) -> set[int]:
    """The inodes of the TCP sockets (v4 and v6) the process listens on."""
    owned = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if found := re.fullmatch(r"socket:\[(\d+)\]", target):
            owned.add(int(found[1]))
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in list(lines(table))[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in owned:  # 0A: LISTEN
                listening.add(int(fields[9]))
    return listening


def lines(path: str) -> Iterator[str]:
    try:
        yield from Path(path).read_text().splitlines()
    except FileNotFoundError:
        return


def abstract_x_socket(display: int) -> bool:
    """Whether an abstract unix socket of the display exists (one shared by every process
    of the network namespace)."""
    name = f"@/tmp/.X11-unix/X{display}"  # noqa: S108
    return any(line.split()[-1] == name for line in list(lines("/proc/net/unix"))[1:])


async def x_connect(display: int, name: bytes, data: bytes) -> int:
    """Open an X11 connection with the given authorization: 1 admitted, 0 refused."""

    def pad(field: bytes) -> bytes:
        return field + b"\0" * (-len(field) % 4)

    setup = b"l\0" + struct.pack("<HHHHxx", 11, 0, len(name), len(data)) + pad(name) + pad(data)

    def exchange() -> int:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(WAIT)
            sock.connect(f"/tmp/.X11-unix/X{display}")  # noqa: S108
            sock.sendall(setup)
            return sock.recv(1)[0]

    return await asyncio.to_thread(exchange)


def test_free_displays_skip_held_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(display, "X_TMP", tmp_path)
    (tmp_path / ".X11-unix").mkdir()
    (tmp_path / ".X3-lock").write_text("12345\n")
    (tmp_path / ".X11-unix" / "X4").touch()
    assert list(display.free_displays(2, 6)) == [2, 5, 6]
