"""Client processes for the benchmarks: each runs a serve loop that takes ``(command, args)``
over a pipe and answers; the benchmark deals its clients out to them."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class ProcessPool:
    """``size`` processes running ``serve(pipe)`` (spawned, so each has its own interpreter)."""

    def __init__(self, size: int, serve: Callable[[Connection], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(size):
            parent, child = context.Pipe()
            proc = context.Process(target=serve, args=(child,), daemon=True)
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)

    async def _ask(self, pipe: Connection) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(("stop", ()))
        for proc in self._procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
