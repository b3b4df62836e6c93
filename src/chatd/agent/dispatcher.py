"""The operations of one agent, by name: the one entry point the connection loop calls."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chatd.agent import context, edits, files, protocol, skills
from chatd.agent.desktop import Desktop
from chatd.agent.display import Geometry
from chatd.agent.errors import OpError
from chatd.agent.git import GitWatcher
from chatd.agent.mcp_servers import MCPHost
from chatd.agent.processes import ProcessTable
from chatd.agent.streams import Channel, StreamOp

# The agent's own dial-in never reaches the commands it runs.
HIDDEN_ENV = (protocol.TOKEN_ENV, protocol.URL_ENV)

_Op = Callable[[dict[str, Any]], dict[str, Any]]


def home_directory() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


class Dispatcher:
    """Runs the operations of :mod:`chatd.agent.protocol` in ``directory``. It outlives
    connections: the processes it started keep running between them."""

    def __init__(
        self,
        directory: Path,
        *,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
        desktop_geometry: Geometry | None = None,
    ) -> None:
        self.directory = directory.resolve()
        if not self.directory.is_dir():
            raise NotADirectoryError(f"{directory} is not a directory")
        self.home = home if home is not None else home_directory()
        environment = dict(os.environ if env is None else env)
        for name in HIDDEN_ENV:
            environment.pop(name, None)
        self.processes = ProcessTable(self.directory, environment)
        root = self.directory
        # These block on the disk: they run in worker threads.
        self._blocking: dict[str, _Op] = {
            protocol.READ_FILE: functools.partial(files.read_file, root),
            protocol.READ_BYTES: functools.partial(files.read_bytes, root),
            protocol.WRITE_FILE: functools.partial(files.write_file, root),
            protocol.EDIT_FILES: functools.partial(edits.edit_files, root),
            protocol.CONTEXT: functools.partial(context.context, root, self.home),
            protocol.READ_SKILL: functools.partial(skills.read_skill, root),
            protocol.READ_SKILL_FILE: functools.partial(skills.read_skill_file, root),
        }
        # The virtual display, started by the first desktop stream.
        self.desktop = Desktop(environment, geometry=desktop_geometry)
        # The git repositories under the directory (and any a tool touched), watched while
        # the server follows them.
        self.git = GitWatcher(self.directory)
        # The servers of the directory's .mcp.json, started on first use.
        self.mcp = MCPHost(self.directory, environment)
        # Streaming operations (``protocol.STREAMS``), by name.
        self.streams: dict[str, StreamOp] = {
            protocol.DESKTOP: self.desktop.stream,
            protocol.GIT_WATCH: self._git_watch,
        }

    async def handle(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """The result of ``op``; raises :class:`OpError`."""
        if not isinstance(args, dict):
            raise OpError(protocol.BAD_REQUEST, "args must be a JSON object")
        blocking = self._blocking.get(op)
        if blocking is not None:
            result = await asyncio.to_thread(blocking, args)
            self._touched(op, args)
            return result
        if op == protocol.GIT_SCAN:
            return await self.git.scan()
        if op == protocol.PROCESS_START:
            self._touched(op, args)
            return await self.processes.start(args)
        if op == protocol.PROCESS_OUTPUT:
            return await self.processes.output(args)
        if op == protocol.PROCESS_LIST:
            return self.processes.list(args)
        if op == protocol.PROCESS_SIGNAL:
            return await self.processes.signal(args)
        if op == protocol.MCP_TOOLS:
            return await self.mcp.tools(args)
        if op == protocol.MCP_CALL:
            return await self.mcp.call(args)
        raise OpError(protocol.BAD_REQUEST, f"unknown operation {op!r}")

    async def stream(self, op: str, args: dict[str, Any], channel: Channel) -> dict[str, Any]:
        """Run the streaming ``op`` over ``channel`` until it ends; raises :class:`OpError`."""
        if not isinstance(args, dict):
            raise OpError(protocol.BAD_REQUEST, "args must be a JSON object")
        run = self.streams.get(op)
        if run is None:
            raise OpError(protocol.BAD_REQUEST, f"unknown streaming operation {op!r}")
        return await run(args, channel)

    def _touched(self, op: str, args: dict[str, Any]) -> None:
        """Watch the repositories holding what a write, an edit or a command touched."""
        if op in (protocol.WRITE_FILE, protocol.PROCESS_START):
            paths = [args.get("path" if op == protocol.WRITE_FILE else "workdir")]
        elif op == protocol.EDIT_FILES:
            listed = args.get("files")
            paths = (
                [f.get("path") for f in listed if isinstance(f, dict)]
                if isinstance(listed, list)
                else []
            )
        else:
            return
        for path in paths:
            if isinstance(path, str) and path:
                self.git.touch(Path(path))

    async def _git_watch(self, args: dict[str, Any], channel: Channel) -> dict[str, Any]:
        async with self.git.subscribe() as messages:
            async for message in messages:
                await channel.send_event(message)
        return {"ok": True}

    async def close(self) -> None:
        """Kill what still runs (the agent is stopping)."""
        await self.git.close()
        await self.mcp.close()
        await self.processes.close()
        await self.desktop.close()
