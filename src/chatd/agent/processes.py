"""The process operations: ``process_start``, ``process_output``, ``process_list`` and
``process_signal``.

Each command runs as ``sh -c`` in its own session and process group, with stdin on
/dev/null and stdout and stderr merged into one pipe. The agent reads that pipe as output
arrives and keeps the last ``PROCESS_OUTPUT_KEPT`` bytes. Processes belong to the agent, not
to a connection: they keep running while the agent reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatd.agent import args as a
from chatd.agent import groups, protocol
from chatd.agent.errors import OpError
from chatd.agent.paths import resolve
from chatd.agent.process import Process

SIGNALS = {"terminate": signal.SIGTERM, "kill": signal.SIGKILL}
# How long closing waits for each killed command to be seen exiting.
CLOSE_WAIT = 5.0


class ProcessTable:
    """The processes one agent started: at most ``max_running`` running at once and
    ``max_kept`` kept in all (the oldest finished ones are forgotten first)."""

    def __init__(
        self,
        root: Path,
        env: Mapping[str, str],
        *,
        max_running: int = protocol.MAX_RUNNING_PROCESSES,
        max_kept: int = protocol.MAX_KEPT_PROCESSES,
        output_kept: int = protocol.PROCESS_OUTPUT_KEPT,
        drain_grace: float = 0.1,
    ) -> None:
        self._root = root
        self._env = dict(env)
        self._max_running = max_running
        self._max_kept = max_kept
        self._output_kept = output_kept
        self._drain_grace = drain_grace
        self._ids = itertools.count(1)
        self._processes: dict[str, Process] = {}
        # Groups of forgotten processes: what they left running is killed on close.
        self._forgotten_groups: set[int] = set()

    async def start(self, args: dict[str, Any]) -> dict[str, Any]:
        command = a.string(args, "command")
        workdir = a.optional_string(args, "workdir")
        env = a.string_map(args, "env")
        a.boolean(args, "background")
        wait_ms = a.integer(args, "wait_ms", default=0)
        if not command.strip():
            raise OpError(protocol.BAD_REQUEST, "the command is empty")
        cwd = self._workdir(workdir)
        _check_env(env)
        running = sum(1 for process in self._processes.values() if process.running)
        if running >= self._max_running:
            raise OpError(
                protocol.LIMIT,
                f"{running} processes are already running in this workspace, the most it "
                "runs at once; wait for some to finish or stop them with process_signal",
            )
        process = self._spawn(command, cwd, {**self._env, **env})
        self._processes[process.process_id] = process
        self._forget_old()
        await process.wait(wait_ms / 1000)
        return process.snapshot()

    async def output(self, args: dict[str, Any]) -> dict[str, Any]:
        process = self._get(args)
        await process.wait(a.integer(args, "wait_ms", default=0) / 1000)
        return process.snapshot()

    def list(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"processes": [p.snapshot(output=False) for p in self._processes.values()]}

    async def signal(self, args: dict[str, Any]) -> dict[str, Any]:
        process = self._get(args)
        name = a.string(args, "signal")
        if name not in SIGNALS:
            raise OpError(
                protocol.BAD_REQUEST, f"unknown signal {name!r}: use 'terminate' or 'kill'"
            )
        if not process.running and not groups.alive(process.pid):
            raise OpError(
                protocol.FAILED,
                f"process {process.process_id} has already exited "
                f"(exit code {process.exit_code}) and nothing of its group runs",
            )
        if SIGNALS[name] == signal.SIGKILL:
            if not await groups.kill(process.pid):
                raise OpError(
                    protocol.FAILED,
                    f"some processes of {process.process_id} survived SIGKILL",
                )
        else:
            groups.send(process.pid, signal.SIGTERM)
        return {"ok": True}

    async def close(self) -> None:
        """Kill every process group that still runs, see the commands exit, and stop
        reading their output."""
        live = [p for p in self._processes.values() if p.running or groups.alive(p.pid)]
        left = [pgid for pgid in self._forgotten_groups if groups.alive(pgid)]
        await asyncio.gather(*(groups.kill(pgid) for pgid in [p.pid for p in live] + left))
        await asyncio.gather(*(p.ended(CLOSE_WAIT) for p in live))
        for process in self._processes.values():
            process.close()

    def _get(self, args: dict[str, Any]) -> Process:
        process_id = a.string(args, "process_id")
        process = self._processes.get(process_id)
        if process is None:
            raise OpError(
                protocol.NOT_FOUND,
                f"no process {process_id!r}; process_list shows the processes this workspace knows",
            )
        return process

    def _workdir(self, workdir: str | None) -> Path:
        if not workdir:
            return self._root
        real = resolve(self._root, workdir)
        if not real.exists():
            raise OpError(protocol.NOT_FOUND, f"the workdir {workdir} does not exist")
        if not real.is_dir():
            raise OpError(protocol.FAILED, f"the workdir {workdir} is not a directory")
        return real

    def _spawn(self, command: str, cwd: Path, env: dict[str, str]) -> Process:
        read_fd, write_fd = os.pipe()
        try:
            popen = subprocess.Popen(
                ["sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            reason = "sh was not found" if isinstance(exc, FileNotFoundError) else exc.strerror
            raise OpError(protocol.FAILED, f"cannot start the command: {reason}") from None
        finally:
            os.close(write_fd)
        return Process(
            f"p{next(self._ids)}",
            command,
            popen,
            read_fd,
            output_kept=self._output_kept,
            drain_grace=self._drain_grace,
        )

    def _forget_old(self) -> None:
        finished = [p for p in self._processes.values() if not p.running]
        excess = len(self._processes) - self._max_kept
        for process in finished[: max(excess, 0)]:
            process.close()
            del self._processes[process.process_id]
            if groups.alive(process.pid):
                self._forgotten_groups = {
                    pgid for pgid in self._forgotten_groups if groups.send(pgid, 0)
                }
                self._forgotten_groups.add(process.pid)


def _check_env(env: dict[str, str]) -> None:
    for name, value in env.items():
        if not name or "=" in name or "\0" in name or "\0" in value:
            raise OpError(
                protocol.BAD_REQUEST,
                f"env: {name!r} is not a valid environment variable (a name without '=' "
                "or NUL bytes, and a value without NUL bytes)",
            )
