"""Real workspace agents behind a real server, for the tool tests and the tool contract.

:func:`real_agents` serves the app on loopback with two workspaces: a *local* one (template
``scratch``, made through the API; its agent started by the server, in bubblewrap when it is
installed) and an *external* one (its agent a ``python -m chatd.agent`` subprocess,
:class:`ExternalAgent`, given the token of the create answer). Both agents dial the server
over a real WebSocket. :class:`RealPool` is the :class:`~tests.tools.agents.AgentPool` of one
of them: each test gets its workspace emptied, with nothing of an earlier test running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx2
from fastapi import FastAPI

from chatd.agent import protocol
from chatd.api.app import create_app
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.workspace.conn import AgentConn, AgentOpError
from chatd.workspace.service import Workspaces
from tests.e2e.server import free_port
from tests.helpers import TEST_SECRETS, Api, ApiUser, bootstrap_admin
from tests.tools.agents import AgentPool, Provisioned
from tests.workspace.support import create, external_workspace, serving

# The first start of an agent (Python, and bubblewrap around it) may take a while on a
# loaded machine; nothing waits that long when it goes well.
CONNECT = 60.0
KINDS = ("local", "external")


class ExternalAgent:
    """A ``python -m chatd.agent`` process serving ``directory`` for the server at ``url``.
    Its stdin is a pipe held open (it stops when the pipe closes); its output goes to
    ``log``; ``env`` adds to (or replaces) the variables it gets from the tests."""

    def __init__(
        self,
        url: str,
        token: str,
        directory: Path,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.directory = directory
        self.log = log
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        env.update({protocol.TOKEN_ENV: self.token, "HOME": str(self.directory), **self.env})
        self._log_file = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chatd.agent",
            "--url",
            self.url,
            "--dir",
            str(self.directory),
            "--exit-on-stdin-eof",
            "--max-retry-delay",
            "0.5",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=self._log_file,
            stderr=self._log_file,
            start_new_session=True,
        )

    async def kill(self) -> None:
        """SIGKILL, as a crash: the commands it started (in sessions of their own) stay."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        await self._reap()

    async def stop(self) -> None:
        """The end of its stdin: it kills its commands and exits."""
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(20):
                await self.proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        await self._reap()

    async def _reap(self) -> None:
        assert self.proc is not None
        await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


@dataclass
class RealAgents:
    """The served app and its two workspaces."""

    app: FastAPI
    service: Workspaces
    db: Database
    url: str  # http://127.0.0.1:<port>
    admin: ApiUser
    local: Provisioned
    external: Provisioned
    external_agent: ExternalAgent

    def pool(self, kind: str) -> RealPool:
        return RealPool(self, kind)

    def workspace(self, kind: str) -> Provisioned:
        return self.local if kind == "local" else self.external

    async def conn(self, workspace_id: uuid.UUID) -> AgentConn:
        return await self.service.connection(workspace_id, wait=CONNECT)

    async def reset(self, made: Provisioned) -> None:
        """Kill what still runs in the workspace and empty its directory (starting the
        external agent again if a test killed it and failed before it restarted it)."""
        if made is self.external and not self.external_agent.running:
            await self.external_agent.start()
        conn = await self.conn(made.workspace_id)
        listed = await conn.call(protocol.PROCESS_LIST, {})
        for process in listed["processes"]:
            if process["running"]:
                with contextlib.suppress(AgentOpError):  # it ended meanwhile
                    await conn.call(
                        protocol.PROCESS_SIGNAL,
                        {"process_id": process["process_id"], "signal": "kill"},
                    )
        await asyncio.to_thread(empty, made.directory)


class RealPool(AgentPool):
    """The workspace of one real agent, one test at a time."""

    def __init__(self, agents: RealAgents, kind: str) -> None:
        self.agents = agents
        self.kind = kind
        self.given = False

    async def provision(self, suggested: Path) -> Provisioned:
        assert not self.given, "a real agent serves one workspace per test"
        self.given = True
        made = self.agents.workspace(self.kind)
        await self.agents.reset(made)
        return made

    async def connect(
        self, workspace_id: uuid.UUID, agent_id: uuid.UUID, directory: Path
    ) -> AgentConn:
        return await self.agents.conn(workspace_id)

    async def close(self) -> None:
        """Nothing: the agent serves the next test (which empties the workspace first)."""


def empty(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def agents_settings(root: Path, **overrides: Any) -> Settings:
    """A server's settings under ``root`` (its SQLite database in the data directory)."""
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "config_dir": root / "config",
        "first_user_email": "admin@example.com",
        "first_user_username": "admin",
        "first_user_password": "correct-horse-battery",
        "openai_api_key": "",
        "anthropic_api_key": "",
        "workers_enabled": False,
        "rate_limit_burst": 1_000_000,
        "http_address": f"127.0.0.1:{free_port()}",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def served(
    settings: Settings, template: Path
) -> AsyncIterator[tuple[FastAPI, Database, str]]:
    """The app of ``settings`` on its loopback port, on a copy of the migrated ``template``
    database; yields it, its database and its http URL."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = Path(settings.resolved_database_url().removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, path)
    db = Database(f"sqlite:///{path}", secrets=TEST_SECRETS)
    app = create_app(settings, db)
    port = int(settings.http_address.rsplit(":", 1)[1])
    try:
        async with app.router.lifespan_context(app), serving(app, port) as ws_url:
            yield app, db, "http" + ws_url.removeprefix("ws")
    finally:
        await db.close()


@asynccontextmanager
async def real_agents(root: Path, template: Path) -> AsyncIterator[RealAgents]:
    """A served app with a local and an external workspace whose agents are connected."""
    settings = agents_settings(root)
    async with served(settings, template) as (app, db, url):
        service: Workspaces = app.state.workspaces
        service.launcher.backoff = (0.05, 0.2)  # a killed local agent comes back at once
        admin = await bootstrap_admin(db, settings)
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            api = Api(http, admin)
            local = uuid.UUID((await create(api, admin, "scratch", name="local"))["id"])
            external_id, token = await external_workspace(api, admin)
        directory = (root / "external").resolve()
        directory.mkdir()
        agent = ExternalAgent(url, token, directory, root / "external-agent.log")
        await agent.start()
        try:
            external = await provisioned(service, uuid.UUID(external_id), directory)
            local_made = await provisioned(service, local, None)
            yield RealAgents(app, service, db, url, admin, local_made, external, agent)
        finally:
            await agent.stop()


async def provisioned(
    service: Workspaces, workspace_id: uuid.UUID, directory: Path | None
) -> Provisioned:
    """The workspace once its agent is connected."""
    conn = await service.connection(workspace_id, wait=CONNECT)
    found = await service.get(workspace_id)
    assert found is not None
    return Provisioned(workspace_id, found.agent.id, directory or Path(conn.directory))
