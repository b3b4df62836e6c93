"""A real ``chatd server`` with a local workspace: its agent dials the server's own address,
stops with the server, shows disconnected after a restart, and goes with the workspace."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.server import ServerProcess, chatd_env, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def agents_serving(directory: Path) -> list[str]:
    done = subprocess.run(
        ["pgrep", "-f", f"chatd.agent .*--dir {directory}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


def test_a_local_workspace_with_a_real_server(tmp_path: Path, servers: list[ServerProcess]) -> None:
    env = chatd_env(tmp_path)
    server = ServerProcess.start(env)
    servers.append(server)
    server.wait_ready()
    headers = {"Coder-Session-Token": server.value("token")}
    me = httpx2.get(server.url + "/api/v2/users/me", headers=headers).json()
    org = me["organization_ids"][0]
    templates = httpx2.get(
        f"{server.url}/api/v2/organizations/{org}/templates", headers=headers
    ).json()
    scratch = {t["name"]: t["id"] for t in templates}["scratch"]
    r = httpx2.post(
        f"{server.url}/api/v2/organizations/{org}/members/me/workspaces",
        headers=headers,
        json={"template_id": scratch, "name": "e2e"},
    )
    assert r.status_code == 201, r.text
    url = f"{server.url}/api/v2/workspaces/{r.json()['id']}"
    directory = tmp_path / "data" / "workspaces" / r.json()["id"]

    def agent() -> dict[str, Any]:
        found: dict[str, Any] = httpx2.get(url, headers=headers).json()["agent"]
        return found

    wait_for(lambda: agent()["status"] == "connected", "the local agent to connect")
    assert agent()["directory"] == str(directory)
    assert agents_serving(directory)

    server.stop()
    wait_for(lambda: not agents_serving(directory), "the agent to stop with the server")
    server = ServerProcess.start(env, port=int(server.url.rsplit(":", 1)[1]))
    servers.append(server)
    server.wait_ready()
    assert agent()["status"] == "disconnected"

    r = httpx2.delete(url, headers=headers)
    assert r.status_code == 204
    assert not directory.exists()
    assert httpx2.get(url, headers=headers).status_code == 404
