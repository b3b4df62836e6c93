"""The operations of one agent, by name: the one entry point the connection loop calls."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chatd.agent import edits, files, protocol
from chatd.agent.errors import OpError
from chatd.agent.processes import ProcessTable

# The agent's own dial-in never reaches the commands it runs.
HIDDEN_ENV = (protocol.TOKEN_ENV, protocol.URL_ENV)

_FileOp = Callable[[Path, dict[str, Any]], dict[str, Any]]
# Operations on files block on the disk: they run in worker threads.
_FILE_OPS: dict[str, _FileOp] = {
    protocol.READ_FILE: files.read_file,
    protocol.READ_BYTES: files.read_bytes,
    protocol.WRITE_FILE: files.write_file,
    protocol.EDIT_FILES: edits.edit_files,
}


class Dispatcher:
    """Runs the operations of :mod:`chatd.agent.protocol` in ``directory``. It outlives
    connections: the processes it started keep running between them."""

    def __init__(self, directory: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.directory = directory.resolve()
        if not self.directory.is_dir():
            raise NotADirectoryError(f"{directory} is not a directory")
        environment = dict(os.environ if env is None else env)
        for name in HIDDEN_ENV:
            environment.pop(name, None)
        self.processes = ProcessTable(self.directory, environment)

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """The result of ``op``; raises :class:`OpError`."""
        if not isinstance(args, dict):
            raise OpError(protocol.BAD_REQUEST, "args must be a JSON object")
        file_op = _FILE_OPS.get(op)
        if file_op is not None:
            return await asyncio.to_thread(file_op, self.directory, args)
        if op == protocol.PROCESS_START:
            return await self.processes.start(args)
        if op == protocol.PROCESS_OUTPUT:
            return await self.processes.output(args)
        if op == protocol.PROCESS_LIST:
            return self.processes.list(args)
        if op == protocol.PROCESS_SIGNAL:
            return await self.processes.signal(args)
        raise OpError(protocol.BAD_REQUEST, f"unknown operation {op!r}")

    async def close(self) -> None:
        """Kill what still runs (the agent is stopping)."""
        await self.processes.close()
