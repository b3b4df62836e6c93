"""What a command in a local workspace cannot reach when its agent runs in bubblewrap.

A real server on loopback whose data directory, config directory and SQLite database (kept
apart from the data directory) all lie inside the Python prefix, a path the sandbox binds in
read-only: so they are hidden by the sandbox covering them, not merely by being elsewhere. A
command in one workspace then finds none of them, nor the other workspace's files, nor the
server's environment, nor any process outside its sandbox.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from chatd.settings import Settings
from chatd.workspace.conn import AgentConn
from chatd.workspace.service import Workspaces
from tests.helpers import Api, bootstrap_admin
from tests.workspace.agents import CONNECT, agents_settings, served
from tests.workspace.support import create, run

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("bwrap") is None,
        reason="bubblewrap (bwrap) is not installed: the sandbox isolation tests need it",
    ),
]
SECRET_ENV = "CHATD_TEST_SERVER_ONLY_SECRET"
SECRET = "do-not-leak-" + uuid.uuid4().hex


@dataclass
class Isolated:
    settings: Settings
    database: Path
    conn: AgentConn  # the agent of the workspace "mine"
    mine: Path
    other: Path


@pytest.fixture
def inside_prefix() -> Iterator[Path]:
    """A directory inside the Python prefix (which the sandbox binds read-only)."""
    path = Path(sys.prefix) / f"chatd-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
async def isolated(
    inside_prefix: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Isolated]:
    monkeypatch.setenv(SECRET_ENV, SECRET)  # the server is this process
    database = inside_prefix / "db" / "chatd.db"
    settings = agents_settings(
        inside_prefix, sandbox="bwrap", database_url=f"sqlite:///{database}"
    )
    async with served(settings, sqlite_template) as (app, db, url):
        service: Workspaces = app.state.workspaces
        admin = await bootstrap_admin(db, settings)
        async with httpx2.AsyncClient(base_url=url, timeout=30) as http:
            api = Api(http, admin)
            mine = await create(api, admin, "scratch", name="mine")
            other = await create(api, admin, "scratch", name="other")
        workspaces = settings.data_dir / "workspaces"
        # Written once the agents run: the config directory is made only now.
        await asyncio.to_thread(write_sentinels, settings, workspaces / other["id"])
        conn = await service.connection(uuid.UUID(mine["id"]), wait=CONNECT)
        # The other workspace's agent runs too (its process must not be seen either).
        await service.connection(uuid.UUID(other["id"]), wait=CONNECT)
        yield Isolated(settings, database, conn, workspaces / mine["id"], workspaces / other["id"])


def write_sentinels(settings: Settings, other: Path) -> None:
    (other / "private.txt").write_text("other's\n")
    (settings.data_dir / "secret.key").write_text("secret\n")
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    (settings.config_dir / "session").write_text("secret\n")


async def test_the_server_files_and_other_workspaces_are_not_there(isolated: Isolated) -> None:
    settings = isolated.settings
    assert isolated.database.is_file()  # on the host, where the server uses it
    for path in (
        isolated.database,
        settings.data_dir / "secret.key",
        settings.config_dir / "session",
        isolated.other / "private.txt",
    ):
        code, output = await run(isolated.conn, f"cat {path}")
        assert code != 0 and "No such file" in output, (path, output)
    # Empty covers, and of the workspaces only this one.
    for directory, shown in [
        (isolated.database.parent, ""),
        (settings.config_dir, ""),
        (settings.data_dir, "workspaces\n"),
        (settings.data_dir / "workspaces", f"{isolated.mine.name}\n"),
    ]:
        assert await run(isolated.conn, f"ls -A {directory}") == (0, shown), directory
    code, _ = await run(isolated.conn, "echo mine > made.txt")
    assert code == 0 and (isolated.mine / "made.txt").read_text() == "mine\n"


async def test_the_server_environment_is_not_there(isolated: Isolated) -> None:
    code, output = await run(isolated.conn, "env")
    assert code == 0 and SECRET_ENV not in output and SECRET not in output
    # Nor in the environment of any process the command can see.
    code, output = await run(isolated.conn, "cat /proc/[0-9]*/environ | tr '\\0' '\\n'")
    assert SECRET not in output and SECRET_ENV not in output


@pytest.fixture
def server_command() -> str:
    """This process's command line (the server runs in it)."""
    return Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


async def test_no_process_outside_the_sandbox_is_seen(
    isolated: Isolated, server_command: str
) -> None:
    code, output = await run(
        isolated.conn,
        'for d in /proc/[0-9]*; do echo "${d#/proc/} $(tr "\\0" " " < $d/cmdline)"; done',
    )
    assert code == 0, output
    seen = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    commands = list(seen.values())
    # bubblewrap as the namespace's init, the agent, and this command: nothing else.
    assert seen["1"].split()[0].endswith("bwrap")
    assert any("-m chatd.agent" in c and str(isolated.mine) in c for c in commands), commands
    assert not any(server_command in c for c in commands), commands
    assert not any(str(isolated.other) in c for c in commands), commands
    assert len(seen) <= 6, commands
