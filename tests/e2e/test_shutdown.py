"""SIGTERM a real ``chatd server`` while a turn waits on a workspace command.

The server stops its turns before it closes its connections: the call in flight is answered
as interrupted (engine-behaviour §5.7), not with the agent's disconnection, the model is not
asked again by the stopping server, and the chat goes back to pending; the restarted server
runs the turn on from that result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from chatd.engine.prompt import INTERRUPTED_RESULT
from chatd.workspace.agents import DISCONNECTED_DURING_CALL
from tests.e2e.server import ServerProcess, chatd_env, wait_for
from tests.e2e.turn_harness import FAST, Client, Fake, configure_models, database, fake_provider

pytestmark = pytest.mark.slow


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with fake_provider(tmp_path) as found:
        yield found


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgres" and not os.environ.get("CHATD_TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL tests are off: set CHATD_TEST_DATABASE_URL")
    with database(str(request.param)) as url:
        yield url


def running(command: str) -> bool:
    done = subprocess.run(["pgrep", "-f", command], capture_output=True, text=True, check=False)
    return bool(done.stdout.split())


def scratch_workspace(api: Client) -> str:
    headers, org = api.headers, api.org_id()
    templates = httpx2.get(
        f"{api.url}/api/v2/organizations/{org}/templates", headers=headers, timeout=10
    ).json()
    scratch = {t["name"]: t["id"] for t in templates}["scratch"]
    r = httpx2.post(
        f"{api.url}/api/v2/organizations/{org}/members/me/workspaces",
        headers=headers,
        json={"template_id": scratch, "name": "shutdown"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    workspace_id = str(r.json()["id"])

    def connected() -> bool:
        r = httpx2.get(f"{api.url}/api/v2/workspaces/{workspace_id}", headers=headers)
        return bool(r.json()["agent"]["status"] == "connected")

    wait_for(connected, "the workspace agent to connect")
    return workspace_id


def tool_results(api: Client, chat_id: str) -> list[dict[str, Any]]:
    return [
        part
        for message in api.messages(chat_id)
        if message["role"] == "tool"
        for part in message["content"]
    ]


def test_a_stopping_server_interrupts_the_call_in_flight(
    tmp_path: Path, fake: Fake, database_url: str
) -> None:
    env = chatd_env(tmp_path, **FAST)
    if database_url:
        env["CHATD_DATABASE_URL"] = database_url
    server = ServerProcess.start(env)
    try:
        server.wait_ready()
        api = Client(server.url, server.value("token"))
        models = configure_models(api, fake)
        workspace_id = scratch_workspace(api)
        command = f"sleep 30.{uuid.uuid4().int % 10**6:06d}"
        fake.script(
            {"tool_calls": [{"name": "execute", "args": {"command": command}, "id": "call_sleep"}]},
            {"text": "Done."},
        )
        chat_id = str(
            api.call(
                "POST",
                json={
                    "organization_id": api.org_id(),
                    "content": [{"type": "text", "text": "wait a while"}],
                    "model_config_id": models["openai-compat"],
                    "workspace_id": workspace_id,
                },
            )["id"]
        )
        wait_for(lambda: running(command), "the command to run in the workspace")
        assert server.stop() == -signal.SIGTERM
        assert fake.remaining() == 1  # the stopping server did not ask the model again

        server = ServerProcess.start(env, port=int(server.url.rsplit(":", 1)[1]))
        server.wait_ready()
        api.wait_status(chat_id, "waiting")
        (result,) = tool_results(api, chat_id)
        assert result["tool_call_id"] == "call_sleep" and result["is_error"] is True
        text = json.dumps(result["result"])
        assert INTERRUPTED_RESULT in text and DISCONNECTED_DURING_CALL not in text
        assert [m["role"] for m in api.messages(chat_id)][-1] == "assistant"
        assert fake.remaining() == 0
    finally:
        server.stop()
