"""Local workspaces for real: the server starts ``python -m chatd.agent`` (in bubblewrap, and
without), it dials in on loopback, runs commands in the workspace, comes back when killed,
and stops (with its processes and directory) when the workspace is deleted; its commands get
none of the server's environment. What bubblewrap hides besides is in
test_sandbox_isolation.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from chatd.settings import Settings
from chatd.workspace.service import Workspaces
from tests.e2e.server import free_port
from tests.helpers import Api, ApiUser
from tests.workspace.support import create, eventually_status, run, serving, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The first start of an agent (a Python process, bubblewrap around it) may take a while on a
# loaded machine; nothing here waits that long when it goes well.
CONNECT = 60.0
SECRET_ENV = "CHATD_TEST_SERVER_ONLY_SECRET"
HAS_BWRAP = shutil.which("bwrap") is not None
NO_BWRAP = "bubblewrap (bwrap) is not installed: the sandboxed workspace tests need it"


@pytest.fixture(params=["bwrap", "none"])
def sandbox(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap" and not HAS_BWRAP:
        pytest.skip(NO_BWRAP)
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, sandbox: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(SECRET_ENV, "do-not-leak")
    return settings.model_copy(
        update={"sandbox": sandbox, "http_address": f"127.0.0.1:{free_port()}"}
    )


@pytest.fixture
async def url(app: FastAPI, settings: Settings) -> AsyncIterator[str]:
    port = int(settings.http_address.rsplit(":", 1)[1])
    async with serving(app, port) as base:
        yield base


@pytest.fixture
def service(app: FastAPI) -> Workspaces:
    found: Workspaces = app.state.workspaces
    found.launcher.backoff = (0.05, 0.2)  # restarts come quickly here
    return found


def processes_matching(text: str) -> list[int]:
    done = subprocess.run(["pgrep", "-f", text], capture_output=True, text=True, check=False)
    return [int(pid) for pid in done.stdout.split()]


async def test_a_local_agent_serves_its_workspace_and_stops_with_it(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces, settings: Settings
) -> None:
    made = await create(api, member, "scratch", name="here")
    key = uuid.UUID(made["id"])
    directory = settings.data_dir / "workspaces" / made["id"]
    conn = await service.connection(key, wait=CONNECT)
    assert conn.directory == str(directory)
    found = await eventually_status(app, key, "connected")
    assert found.agent.directory == str(directory) and found.agent.operating_system == "linux"
    code, output = await run(conn, 'pwd; echo "home=$HOME"; git rev-parse --is-inside-work-tree')
    assert (code, output.split()) == (0, [str(directory), f"home={directory}", "true"])
    code, _ = await run(conn, "echo made > made.txt")
    assert code == 0 and (directory / "made.txt").read_text() == "made\n"
    marker = f"sleep {900_000 + os.getpid() % 1000}.{uuid.uuid4().int % 1000}"
    await conn.call("process_start", {"command": marker, "background": True})
    await wait_until(lambda: bool(processes_matching(marker)))

    r = await api.request("DELETE", f"/api/v2/workspaces/{made['id']}", member)
    assert r.status_code == 204
    assert not directory.exists()
    assert not service.launcher.running(key)
    assert conn.closed
    await wait_until(lambda: not processes_matching(marker))


async def test_a_killed_agent_comes_back(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    made = await create(api, member, "scratch")
    key = uuid.UUID(made["id"])
    first = await service.connection(key, wait=CONNECT)
    pid = service.launcher.pid(key)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    await wait_until(lambda: first.closed)
    second = await service.connection(key, wait=CONNECT)
    assert second is not first and second.build_id != first.build_id
    assert second.agent_id == first.agent_id
    assert (await run(second, "true"))[0] == 0


async def test_a_stopped_server_leaves_agents_to_be_started_again(
    url: str, app: FastAPI, api: Api, member: ApiUser, service: Workspaces
) -> None:
    made = await create(api, member, "scratch")
    key = uuid.UUID(made["id"])
    await service.connection(key, wait=CONNECT)
    await service.launcher.stop(key)  # as when the server that started it went away
    await eventually_status(app, key, "disconnected")
    await service.open()
    conn = await service.connection(key, wait=CONNECT)  # started again on demand
    assert (await run(conn, "true"))[0] == 0


async def test_a_command_template_runs_its_command_with_the_dial_in(
    url: str, app: FastAPI, api: Api, admin: ApiUser, service: Workspaces, tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    command = (
        f'exec {sys.executable} -m chatd.agent --url "$CHATD_AGENT_URL" '
        '--dir "$CHATD_PARAM_DIR" --exit-on-stdin-eof'
    )
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{admin.org_id}/templates",
        admin,
        json={
            "name": "here",
            "kind": "command",
            "command": command,
            "parameters": [{"name": "dir", "required": True}],
        },
    )
    assert r.status_code == 201, r.text
    made = await create(
        api, admin, "here", rich_parameter_values=[{"name": "dir", "value": str(target)}]
    )
    key = uuid.UUID(made["id"])
    conn = await service.connection(key, wait=CONNECT)
    assert conn.directory == str(target)
    code, output = await run(conn, "echo $CHATD_AGENT_TOKEN; pwd")
    assert (code, output.split()) == (0, [str(target)])  # the agent keeps its token to itself
    r = await api.request("DELETE", f"/api/v2/workspaces/{made['id']}", admin)
    assert r.status_code == 204
    assert not service.launcher.running(key) and conn.closed
    assert target.is_dir()  # not the server's directory: left alone


async def test_an_agent_printing_a_huge_line_is_still_supervised(
    url: str, api: Api, admin: ApiUser, service: Workspaces, tmp_path: Path, sandbox: str
) -> None:
    """A line of output longer than any buffer is logged cut; the process still connects,
    and is started again when killed."""
    if sandbox == "bwrap":
        pytest.skip("a command template's command runs outside the sandbox")
    command = (
        "head -c 70000 /dev/zero | tr '\\0' x; echo; "
        f'exec {sys.executable} -m chatd.agent --url "$CHATD_AGENT_URL" '
        f"--dir {tmp_path} --exit-on-stdin-eof"
    )
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{admin.org_id}/templates",
        admin,
        json={"name": "loud", "kind": "command", "command": command},
    )
    assert r.status_code == 201, r.text
    key = uuid.UUID((await create(api, admin, "loud"))["id"])
    first = await service.connection(key, wait=CONNECT)
    pid = service.launcher.pid(key)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    await wait_until(lambda: first.closed)
    # Started again by its supervisor, not by someone asking for it.
    await wait_until(lambda: service.launcher.pid(key) not in (None, pid), CONNECT)
    second = await service.connection(key, wait=CONNECT)
    assert second is not first and (await run(second, "true"))[0] == 0


async def test_commands_get_only_the_agent_environment(
    url: str, api: Api, member: ApiUser, service: Workspaces
) -> None:
    made = await create(api, member, "scratch")
    conn = await service.connection(uuid.UUID(made["id"]), wait=CONNECT)
    code, output = await run(conn, "env")
    assert code == 0
    names = {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}
    assert SECRET_ENV not in names and "CHATD_CONFIG_DIR" not in names
    assert not any(n.startswith(("CHATD_", "OPENAI", "ANTHROPIC")) for n in names), names
