"""The workspace's desktop: a virtual X display (``Xvfb``) served over VNC (``x11vnc``), and
the ``desktop`` stream operation that carries one VNC connection to the server.

The display starts on first demand and is kept for later connections; it stops when the agent
closes, or once no connection has used it for ``idle_timeout`` seconds, and starts again when
asked for after that (or after its processes died).

Nothing of it is reachable from the network. A local agent shares the host's network (only
its files are its own), so a TCP port would be open to every other workspace on the host:

- ``Xvfb`` listens only on its ``/tmp/.X11-unix`` socket (no TCP, no abstract socket, which
  lives in the network namespace), and admits only clients holding the random cookie of an
  authority file in the desktop's private directory (mode 0700).
- ``x11vnc`` listens only on a unix socket in that directory (both TCP ports set to 0). Its
  ``-localhost`` is not used: it refuses clients of the unix socket, whose host it names
  "localhost" while the option admits 127.0.0.1. Its remote control, external commands and
  ``~/.x11vncrc`` (the workspace is its home) are switched off.

The stream: connect to the VNC socket, send ``{"ready": true, "width", "height"}``, then copy
bytes both ways, at most ``CHUNK`` at a time, until VNC closes (the result is ``{"ok":
true}``) or the server cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatd.agent import groups, protocol
from chatd.agent.display import Geometry, free_displays, lock_file, write_authority
from chatd.agent.errors import OpError
from chatd.agent.relay import relay
from chatd.agent.streams import Channel

log = logging.getLogger("chatd.agent")

XVFB = "Xvfb"
X11VNC = "x11vnc"
NOT_INSTALLED = "no desktop: Xvfb and x11vnc are not installed in the workspace"
CHUNK = 64 * 1024
IDLE_TIMEOUT = 600.0
START_TIMEOUT = 30.0
# Display numbers tried before giving up (another server may take one meanwhile).
DISPLAY_ATTEMPTS = 8
# How long a stopped process gets to clean up (its lock file, its socket) before SIGKILL.
STOP_GRACE = 2.0
SOCKET_POLL = 0.02
LOG_TAIL = 1500


@dataclass
class Running:
    """The processes of a started desktop."""

    directory: Path
    display: int
    xvfb: asyncio.subprocess.Process
    vnc: asyncio.subprocess.Process
    socket: Path

    @property
    def alive(self) -> bool:
        return self.xvfb.returncode is None and self.vnc.returncode is None


class Desktop:
    """One virtual display and its VNC server, started by the first connection."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        geometry: Geometry | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
        temp_dir: Path | None = None,
    ) -> None:
        self.geometry = geometry or Geometry()
        self.idle_timeout = idle_timeout
        self.start_timeout = start_timeout
        self._env = dict(env)
        self._temp_dir = temp_dir
        self._lock = asyncio.Lock()
        self._running: Running | None = None
        self._active = 0
        self._idle: asyncio.Task[None] | None = None

    @property
    def running(self) -> Running | None:
        """The processes while the desktop runs."""
        return self._running

    async def stream(self, args: dict[str, Any], channel: Channel) -> dict[str, Any]:
        """The ``desktop`` stream operation."""
        reader, writer = await self.connect()
        try:
            await channel.send_event(
                {"ready": True, "width": self.geometry.width, "height": self.geometry.height}
            )
            await relay(reader, writer, channel, CHUNK)
        finally:
            writer.close()
            self.release()
        return {"ok": True}

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection to the VNC server (started first if it does not run); the caller
        closes it and then calls :meth:`release`."""
        async with self._lock:
            self._cancel_idle()
            try:
                connection = await self._connect()
            except BaseException:
                self._schedule_idle()
                raise
            self._active += 1
            return connection

    def release(self) -> None:
        """A connection made by :meth:`connect` has ended."""
        self._active -= 1
        self._schedule_idle()

    async def close(self) -> None:
        """Stop the display and the VNC server (the agent is stopping)."""
        async with self._lock:
            self._cancel_idle()
            await self._stop()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for attempt in itertools.count():
            if self._running is not None and not self._running.alive:
                log.warning("the desktop's processes ended: starting them again")
                await self._stop()
            if self._running is None:
                self._running = await self._start()
            try:
                return await asyncio.open_unix_connection(self._running.socket, limit=CHUNK)
            except OSError as exc:
                if attempt > 0:
                    raise OpError(protocol.FAILED, f"cannot reach the VNC server: {exc}") from exc
                log.warning("cannot reach the VNC server (%s): starting it again", exc)
                await self._stop()
        raise AssertionError("unreachable")

    async def _start(self) -> Running:
        xvfb = shutil.which(XVFB, path=self._env.get("PATH", os.defpath))
        vnc = shutil.which(X11VNC, path=self._env.get("PATH", os.defpath))
        if xvfb is None or vnc is None:
            raise OpError(protocol.UNAVAILABLE, NOT_INSTALLED)
        directory = Path(tempfile.mkdtemp(prefix="chatd-desktop-", dir=self._temp_dir))
        try:
            authority = directory / "Xauthority"
            write_authority(authority)
            async with asyncio.timeout(self.start_timeout):
                server, display = await self._start_display(xvfb, authority, directory)
                try:
                    viewer, socket = await self._start_vnc(vnc, display, authority, directory)
                except BaseException:
                    await _end(server, display)
                    raise
        except TimeoutError:
            shutil.rmtree(directory, ignore_errors=True)
            raise OpError(
                protocol.FAILED, f"the desktop did not start within {self.start_timeout:g} s"
            ) from None
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        log.info("desktop started on display :%d (%s)", display, self.geometry.screen())
        return Running(directory, display, server, viewer, socket)

    async def _start_display(
        self, xvfb: str, authority: Path, directory: Path
    ) -> tuple[asyncio.subprocess.Process, int]:
        log_path = directory / "xvfb.log"
        for display in itertools.islice(free_displays(), DISPLAY_ATTEMPTS):
            read, write = os.pipe()
            try:
                with log_path.open("ab") as output:
                    server = await asyncio.create_subprocess_exec(
                        xvfb,
                        f":{display}",
                        "-displayfd",
                        str(write),
                        "-auth",
                        str(authority),
                        "-nolisten",
                        "tcp",
                        "-nolisten",
                        "local",
                        "-screen",
                        "0",
                        self.geometry.screen(),
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=output,
                        stderr=output,
                        pass_fds=(write,),
                        start_new_session=True,
                        env=self._env,
                    )
            except BaseException:
                os.close(read)
                raise
            finally:
                os.close(write)
            try:
                ready = await _read_line(read)
            except BaseException:
                await _end(server, display)
                raise
            if ready.strip() == str(display).encode():
                return server, display
            # It ended without a display: most likely another server took the number.
            await _end(server, display)
        raise OpError(protocol.FAILED, f"the virtual display did not start: {_tail(log_path)}")

    async def _start_vnc(
        self, vnc: str, display: int, authority: Path, directory: Path
    ) -> tuple[asyncio.subprocess.Process, Path]:
        socket = directory / "vnc.sock"
        log_path = directory / "x11vnc.log"
        with log_path.open("ab") as output:
            viewer = await asyncio.create_subprocess_exec(
                vnc,
                *_vnc_options(display, authority, socket),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                env=self._env,
            )
        try:
            while not await _accepts(socket):
                if viewer.returncode is not None:
                    raise OpError(
                        protocol.FAILED, f"the VNC server did not start: {_tail(log_path)}"
                    )
                await asyncio.sleep(SOCKET_POLL)
        except BaseException:
            await _end(viewer)
            raise
        return viewer, socket

    async def _stop(self) -> None:
        running = self._running
        if running is None:
            return
        await _end(running.vnc)
        await _end(running.xvfb, running.display)
        shutil.rmtree(running.directory, ignore_errors=True)
        self._running = None  # only now: stopping again after a cancel finishes the job
        log.info("desktop on display :%d stopped", running.display)

    def _schedule_idle(self) -> None:
        if self._active == 0 and self._running is not None and self._idle is None:
            self._idle = asyncio.get_running_loop().create_task(self._expire())

    def _cancel_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    async def _expire(self) -> None:
        await asyncio.sleep(self.idle_timeout)
        async with self._lock:
            if self._idle is not asyncio.current_task():
                return  # a connection came meanwhile
            self._idle = None
            if self._active == 0:
                log.info("the desktop was not used for %g s: stopping it", self.idle_timeout)
                await self._stop()


def _vnc_options(display: int, authority: Path, socket: Path) -> list[str]:
    return [
        "-display",
        f":{display}",
        "-auth",
        str(authority),
        "-unixsock",
        str(socket),
        "-rfbport",
        "0",
        "-rfbportv6",
        "0",
        "-listen",
        "localhost",
        "-nopw",
        "-forever",
        "-shared",
        "-norc",
        "-noremote",
        "-nocmds",
        "-nolookup",
        "-quiet",
    ]


async def _read_line(fd: int) -> bytes:
    """The first line written to the pipe ``fd`` (or what came before its end)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        return await reader.readline()
    finally:
        transport.close()


async def _accepts(socket: Path) -> bool:
    """Whether the unix socket takes connections (the one made to find out is closed)."""
    try:
        _, writer = await asyncio.open_unix_connection(socket)
    except OSError:
        return False
    writer.close()
    return True


async def _end(process: asyncio.subprocess.Process, display: int | None = None) -> None:
    """Stop ``process`` and its group: SIGTERM, then SIGKILL after ``STOP_GRACE``. An X
    server killed before it removed its lock file leaves it behind: it is removed here."""
    if process.returncode is None:
        groups.send(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_GRACE):
                await process.wait()
        except TimeoutError:
            await groups.kill(process.pid)
    await process.wait()
    await groups.kill(process.pid)  # what it left in its group
    if display is not None:
        _remove_lock(display, process.pid)


def _remove_lock(display: int, pid: int) -> None:
    path = lock_file(display)
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == pid:
            path.unlink()


def _tail(path: Path) -> str:
    try:
        text = path.read_bytes()[-LOG_TAIL:].decode("utf-8", errors="replace").strip()
    except OSError:
        return "(no log)"
    return text or "(nothing logged)"
