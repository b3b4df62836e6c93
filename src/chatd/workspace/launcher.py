"""Starting and supervising the agents this server runs: local ones and ``command`` ones.

One supervisor task per workspace: it asks for a fresh token (its hash is stored, the
workspace shows ``connecting``), starts the process, and when the process exits while the
workspace exists starts it again after a delay that doubles from ``backoff[0]`` to
``backoff[1]`` (and resets once a process has run a while). :meth:`Launcher.ensure` starts a
supervisor, or wakes one that is waiting out its delay.

A local agent is ``python -m chatd.agent --url <server> --dir <workspace>
--exit-on-stdin-eof``, in the sandbox (:mod:`chatd.workspace.sandbox`); a ``command``
template's command runs with ``sh -c`` on the host, unsandboxed, with ``CHATD_AGENT_URL``
and ``CHATD_AGENT_TOKEN`` (and its parameters as ``CHATD_PARAM_<NAME>``) in its environment.
The token is only ever in the environment. Every process has a pipe as stdin that the server
holds open: it reads end of file when the server goes away. Stopping one closes that pipe,
then sends SIGTERM to its process group, then SIGKILL.

A process's output (stdout and stderr) is logged line by line; a line longer than
``MAX_LOG_LINE`` bytes is cut there (marked, with the number of bytes left out). Nothing a
process does ends its supervision: a failure to start it or to read its output is logged,
and it is started again after the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from chatd.agent.protocol import TOKEN_ENV, URL_ENV
from chatd.store.errors import StoreError
from chatd.workspace.sandbox import Prepared, Sandbox

log = structlog.get_logger(__name__)


def agent_command(executable: str) -> tuple[str, ...]:
    """The agent's command line, run by ``executable`` named without ``..`` (a sandbox binds
    only the interpreter's own directories, so ``/x/web/../.venv/bin/python``, which a server
    started as ``../.venv/bin/python`` sees, would not resolve inside it)."""
    return (os.path.normpath(os.path.abspath(executable)), "-m", "chatd.agent")


AGENT_COMMAND = agent_command(sys.executable)
# Restart delays (seconds): doubling from the first to the second; reset after a process
# that ran RESET_AFTER seconds.
BACKOFF = (1.0, 60.0)
RESET_AFTER = 60.0
STOP_GRACE = 3.0
MAX_LOG_LINE = 8192  # bytes of one output line that are logged
READ_CHUNK = 65536

# Gives a new token for the workspace's agent (its hash stored), or None: the workspace is gone.
IssueToken = Callable[[uuid.UUID], Awaitable[str | None]]


@dataclass(frozen=True)
class AgentSpec:
    """What to start for one workspace."""

    workspace_id: uuid.UUID
    kind: str  # "local" or "command"
    directory: Path | None = None  # local
    command: str | None = None  # command
    parameters: Mapping[str, str] = field(default_factory=dict)


def parameter_env(parameters: Mapping[str, str]) -> dict[str, str]:
    return {f"CHATD_PARAM_{name.upper()}": value for name, value in parameters.items()}


class Launcher:
    def __init__(
        self,
        *,
        server_url: str,
        sandbox: Sandbox,
        issue_token: IssueToken,
        agent_command: Sequence[str] = AGENT_COMMAND,
        backoff: tuple[float, float] = BACKOFF,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self.server_url = server_url
        self.sandbox = sandbox
        self.issue_token = issue_token
        self.agent_command = list(agent_command)
        self.backoff = backoff
        self.stop_grace = stop_grace
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._wake: dict[uuid.UUID, asyncio.Event] = {}
        self._procs: dict[uuid.UUID, asyncio.subprocess.Process] = {}
        self._closed = False

    def running(self, workspace_id: uuid.UUID) -> bool:
        """A supervisor runs for the workspace (its process may be between restarts)."""
        task = self._tasks.get(workspace_id)
        return task is not None and not task.done()

    def pid(self, workspace_id: uuid.UUID) -> int | None:
        """The process id of the workspace's running process (None between restarts); the
        tests use it to kill an agent."""
        proc = self._procs.get(workspace_id)
        return proc.pid if proc is not None and proc.returncode is None else None

    def ensure(self, spec: AgentSpec) -> None:
        """Supervise the workspace's agent; wake a supervisor waiting to restart it."""
        if self._closed:
            return
        if self.running(spec.workspace_id):
            self._wake[spec.workspace_id].set()
            return
        self._wake[spec.workspace_id] = asyncio.Event()
        # A context of its own: not the log context of the request that happened to start it.
        task = asyncio.create_task(
            self._supervise(spec), name=f"agent {spec.workspace_id}", context=contextvars.Context()
        )
        self._tasks[spec.workspace_id] = task
        task.add_done_callback(lambda t: self._forget(spec.workspace_id, t))

    def _forget(self, workspace_id: uuid.UUID, task: asyncio.Task[None]) -> None:
        if self._tasks.get(workspace_id) is task:
            del self._tasks[workspace_id]
            self._wake.pop(workspace_id, None)

    async def stop(self, workspace_id: uuid.UUID) -> None:
        """Stop supervising the workspace and stop its process."""
        task = self._tasks.get(workspace_id)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        """Stop every agent (server shutdown)."""
        self._closed = True
        await asyncio.gather(*(self.stop(w) for w in list(self._tasks)))

    async def _supervise(self, spec: AgentSpec) -> None:
        delay = self.backoff[0]
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                code = await self._run_once(spec)
            except StoreError:
                log.exception("could not record a workspace agent's start")
                code = None
            except Exception:
                log.exception("workspace agent run failed", workspace_id=str(spec.workspace_id))
                code = None
            if code is _GONE:
                return
            if loop.time() - started >= RESET_AFTER:
                delay = self.backoff[0]
            log.warning(
                "workspace agent exited; restarting",
                workspace_id=str(spec.workspace_id),
                exit_code=code,
                delay=delay,
            )
            wake = self._wake[spec.workspace_id]
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)
            delay = min(delay * 2, self.backoff[1])

    async def _run_once(self, spec: AgentSpec) -> int | object | None:
        """Start the process and wait for its exit code (``_GONE``: the workspace is gone;
        None: it could not start)."""
        token = await self.issue_token(spec.workspace_id)
        if token is None:
            return _GONE
        prepared = self._prepare(spec, token)
        try:
            proc = await asyncio.create_subprocess_exec(
                *prepared.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=prepared.env,
                cwd=prepared.cwd,
                pass_fds=prepared.pass_fds,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL in an argument or variable
            log.error(
                "could not start a workspace agent",
                workspace_id=str(spec.workspace_id),
                error=str(exc),
            )
            return None
        finally:
            prepared.close_fds()
        log.info("workspace agent started", workspace_id=str(spec.workspace_id), pid=proc.pid)
        self._procs[spec.workspace_id] = proc
        pump = asyncio.create_task(_log_output(proc, spec.workspace_id))
        try:
            return await proc.wait()
        finally:
            self._procs.pop(spec.workspace_id, None)
            if proc.returncode is None:
                await _terminate(proc, self.stop_grace)
            # A process left behind in another session may hold the output pipe open.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), 1.0)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _prepare(self, spec: AgentSpec, token: str) -> Prepared:
        if spec.kind == "command":
            assert spec.command is not None
            env = {
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "HOME": os.environ.get("HOME", "/"),
                **parameter_env(spec.parameters),
                URL_ENV: self.server_url,
                TOKEN_ENV: token,
            }
            return Prepared(argv=["sh", "-c", spec.command], env=env, cwd=Path.cwd())
        assert spec.directory is not None
        argv = [
            *self.agent_command,
            "--url",
            self.server_url,
            "--dir",
            str(spec.directory),
            "--exit-on-stdin-eof",
        ]
        return self.sandbox.prepare(argv, spec.directory, {TOKEN_ENV: token})


_GONE = object()


class OutputLines:
    """Splits a process's output into lines, each cut at ``limit`` bytes: however long a
    line, no more than ``limit`` bytes of it are held."""

    def __init__(self, limit: int = MAX_LOG_LINE) -> None:
        self.limit = limit
        self._line = bytearray()
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        """The lines ``chunk`` completes."""
        *complete, rest = chunk.split(b"\n")
        lines = []
        for piece in complete:
            self._hold(piece)
            lines.append(self._take())
        self._hold(rest)
        return lines

    def finish(self) -> list[str]:
        """The last line, when the output does not end with a newline."""
        return [self._take()] if self._line or self._dropped else []

    def _hold(self, piece: bytes) -> None:
        room = self.limit - len(self._line)
        self._line += piece[:room]
        self._dropped += max(0, len(piece) - room)

    def _take(self) -> str:
        text = self._line.decode(errors="replace").rstrip()
        if self._dropped:
            text += f" [cut: {self._dropped} more bytes]"
        self._line.clear()
        self._dropped = 0
        return text


async def _log_output(proc: asyncio.subprocess.Process, workspace_id: uuid.UUID) -> None:
    """Log the process's output until it closes. A failure is logged, and the rest of the
    output read unlogged (a process writing to a pipe nobody reads would block)."""
    assert proc.stdout is not None
    lines = OutputLines()
    try:
        while chunk := await proc.stdout.read(READ_CHUNK):
            for line in lines.feed(chunk):
                log.info("workspace agent output", workspace_id=str(workspace_id), line=line)
        for line in lines.finish():
            log.info("workspace agent output", workspace_id=str(workspace_id), line=line)
    except Exception:
        log.exception("reading a workspace agent's output failed", workspace_id=str(workspace_id))
        with contextlib.suppress(Exception):
            while await proc.stdout.read(READ_CHUNK):
                pass


async def _terminate(proc: asyncio.subprocess.Process, grace: float) -> None:
    """Close its stdin, then SIGTERM its process group, then SIGKILL, ``grace`` apart."""
    if proc.stdin is not None:
        proc.stdin.close()
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            return
