"""One started command: its exit, watched without blocking, and the tail of its output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from typing import Any

from chatd.agent.paths import text

READ_CHUNK = 64 * 1024
# Reads per wake-up at most: a command that writes without pause cannot hold the loop.
READS_PER_TURN = 16


class Output:
    """The last ``kept`` bytes of a stream, and how many came before them. The buffer grows
    to twice ``kept`` before the front is cut, so a flood costs O(1) per byte."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._data = bytearray()
        self._total = 0

    @property
    def dropped(self) -> int:
        return self._total - min(len(self._data), self._kept)

    def add(self, chunk: bytes) -> None:
        self._data += chunk
        self._total += len(chunk)
        if len(self._data) > 2 * self._kept:
            del self._data[: len(self._data) - self._kept]

    def text(self) -> str:
        data = bytes(self._data[-self._kept :]) if self._kept else b""
        if self.dropped:
            # The cut may have split a character: skip its continuation bytes.
            start = 0
            while start < min(3, len(data)) and 0x80 <= data[start] <= 0xBF:
                start += 1
            data = data[start:]
        return data.decode("utf-8", errors="replace")


class Process:
    """A running or finished command. The exit and the output pipe are watched through the
    event loop (a pidfd where the OS has one, else a waiting thread), so the process's
    state is the same under any loop and the pipe is read even after the command ends while
    something it started still writes."""

    def __init__(
        self,
        process_id: str,
        command: str,
        popen: subprocess.Popen[bytes],
        read_fd: int,
        *,
        output_kept: int,
        drain_grace: float,
    ) -> None:
        self.process_id = process_id
        self.command = command
        self.pid = popen.pid
        self.exit_code: int | None = None
        self.signal: int | None = None
        self.output = Output(output_kept)
        self._popen = popen
        self._fd: int | None = read_fd
        self._drain_grace = drain_grace
        self._started_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._ended: float | None = None
        self._loop = asyncio.get_running_loop()
        self._eof = asyncio.Event()
        self._done = asyncio.Event()
        os.set_blocking(read_fd, False)
        self._loop.add_reader(read_fd, self._on_readable)
        self._finisher = self._loop.create_task(self._finish(self._watch_exit()))

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    async def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the command to end (its output read)."""
        if seconds > 0 and self.running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), seconds)

    def snapshot(self, *, output: bool = True) -> dict[str, Any]:
        end = self._ended if self._ended is not None else time.monotonic()
        snapshot: dict[str, Any] = {
            "process_id": self.process_id,
            "command": text(self.command),
            "pid": self.pid,
            "running": self.running,
            "exit_code": self.exit_code,
            "output_truncated": self.output.dropped > 0,
            "wall_duration_ms": int((end - self._started) * 1000),
            "started_at": self._started_at.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
        }
        if output:
            snapshot["output"] = self.output.text()
        if self.signal is not None:
            snapshot["signal"] = signal.Signals(self.signal).name
        return snapshot

    async def ended(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the command itself to exit; whether it did."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._finisher), seconds)
        return self._finisher.done()

    def close(self) -> None:
        """Stop reading the output pipe (the process is forgotten)."""
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None
            self._eof.set()

    def _on_readable(self) -> None:
        assert self._fd is not None
        for _ in range(READS_PER_TURN):
            try:
                chunk = os.read(self._fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.close()
                return
            self.output.add(chunk)
            if len(chunk) < READ_CHUNK:
                return

    def _watch_exit(self) -> asyncio.Future[int]:
        exited: asyncio.Future[int] = self._loop.create_future()
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            threading.Thread(target=self._wait_in_thread, args=(exited,), daemon=True).start()
            return exited

        def on_exit() -> None:
            code = self._popen.poll()
            if code is not None:
                self._loop.remove_reader(pidfd)
                os.close(pidfd)
                if not exited.done():
                    exited.set_result(code)

        self._loop.add_reader(pidfd, on_exit)
        return exited

    def _wait_in_thread(self, exited: asyncio.Future[int]) -> None:
        code = self._popen.wait()

        def report() -> None:
            if not exited.done():
                exited.set_result(code)

        self._loop.call_soon_threadsafe(report)

    async def _finish(self, exited: asyncio.Future[int]) -> None:
        code = await exited
        self._ended = time.monotonic()
        if code < 0:
            self.signal = -code
            self.exit_code = 128 - code
        else:
            self.exit_code = code
        # Output written just before the exit may still be in the pipe; a process the
        # command left behind may hold the pipe open for longer, and is not waited for.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._eof.wait(), self._drain_grace)
        if self._fd is not None:
            # A busy loop may not have run the reader yet: what the pipe holds now was
            # written before the exit, so it belongs to this answer.
            self._on_readable()
        self._done.set()
