"""A real server on loopback for the app under test, and a small agent written for the tests
(the ``websockets`` client): hello, then each request answered by a handler of the test."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from chatd.agent.protocol import AGENT_PATH, BAD_REQUEST, GIT_WATCH, MAX_FRAME_BYTES, TOKEN_HEADER
from chatd.sdk.workspaces import Workspace
from chatd.workspace.conn import AgentConn
from chatd.workspace.service import Workspaces
from tests.helpers import Api, ApiUser

WAIT = 10.0
Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@asynccontextmanager
async def serving(app: FastAPI, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` (its lifespan already running) on 127.0.0.1; yields ``ws://host:port``."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        ws_max_size=MAX_FRAME_BYTES,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(WAIT):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await task


async def echo(op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"op": op, "args": args}


class TinyAgent:
    """An agent that says hello and answers requests with ``handler`` (raising
    ``AgentFailure`` answers an error); it records the ids the server cancelled."""

    def __init__(
        self,
        url: str,
        token: str,
        handler: Handler = echo,
        hello: dict[str, Any] | None = None,
    ) -> None:
        self.url = url + AGENT_PATH
        self.token = token
        self.handler = handler
        self.hello = hello or {
            "type": "hello",
            "version": "1",
            "directory": "/work/tiny",
            "home": "/home/tiny",
            "operating_system": "linux",
        }
        self.cancelled: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self.ws: ClientConnection | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> TinyAgent:
        self.ws = await connect(
            self.url,
            additional_headers={TOKEN_HEADER: self.token},
            proxy=None,
            max_size=MAX_FRAME_BYTES,
            open_timeout=WAIT,
        )
        await self.ws.send(json.dumps(self.hello))
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        with suppress(Exception):
            async for text in self.ws:
                frame = json.loads(text)
                if frame["type"] == "request" and frame["op"] == GIT_WATCH:
                    # Like an agent without a git watch: the server stops asking.
                    error = {"code": BAD_REQUEST, "message": "unknown streaming operation"}
                    reply = {"type": "response", "id": frame["id"], "error": error}
                    await self.ws.send(json.dumps(reply))
                elif frame["type"] == "request":
                    self.requests.append(frame)
                    self._tasks[frame["id"]] = asyncio.create_task(self._answer(frame))
                elif frame["type"] == "cancel":
                    self.cancelled.append(frame["id"])
                    task = self._tasks.pop(frame["id"], None)
                    if task is not None:
                        task.cancel()

    async def _answer(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        try:
            result = await self.handler(frame["op"], frame["args"])
            reply: dict[str, Any] = {"type": "response", "id": frame["id"], "result": result}
        except AgentFailure as exc:
            reply = {
                "type": "response",
                "id": frame["id"],
                "error": {"code": exc.code, "message": exc.message},
            }
        with suppress(Exception):
            await self.ws.send(json.dumps(reply))

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader

    async def __aenter__(self) -> TinyAgent:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AgentFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def external_workspace(api: Api, user: ApiUser, name: str = "ext") -> tuple[str, str]:
    """A new external workspace of ``user``: (its id, its agent token)."""
    r = await api.request("GET", f"/api/v2/organizations/{user.org_id}/templates", api.admin)
    found = {t["name"]: t["id"] for t in r.json()}
    template = found.get("external")
    if template is None:
        r = await api.request(
            "POST",
            f"/api/v2/organizations/{user.org_id}/templates",
            api.admin,
            json={"name": "external", "kind": "external"},
        )
        assert r.status_code == 201, r.text
        template = r.json()["id"]
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{user.org_id}/members/me/workspaces",
        user,
        json={"template_id": template, "name": name},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["agent_token"]


async def workspace(app: FastAPI, workspace_id: str | uuid.UUID) -> Workspace:
    service: Workspaces = app.state.workspaces
    found = await service.get(uuid.UUID(str(workspace_id)))
    assert found is not None
    return found


async def wait_until(check: Callable[[], bool | Awaitable[bool]], within: float = WAIT) -> None:
    """Poll ``check`` until it holds, for at most ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            held = check()
            if not isinstance(held, bool):
                held = await held
            if held:
                return
            await asyncio.sleep(0.01)


async def eventually_status(
    app: FastAPI, workspace_id: str | uuid.UUID, status: str, within: float = WAIT
) -> Workspace:
    """The workspace once its agent's status is ``status`` (polled)."""

    async def reached() -> bool:
        return (await workspace(app, workspace_id)).agent.status == status

    await wait_until(reached, within)
    return await workspace(app, workspace_id)


async def create(api: Api, user: ApiUser, template: str, **body: Any) -> dict[str, Any]:
    """A new workspace of ``user`` from the template named ``template``: the create answer."""
    r = await api.request("GET", f"/api/v2/organizations/{user.org_id}/templates", user)
    template_id = {t["name"]: t["id"] for t in r.json()}[template]
    r = await api.request(
        "POST",
        f"/api/v2/organizations/{user.org_id}/members/me/workspaces",
        user,
        json={"template_id": template_id, **body},
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def run(conn: AgentConn, command: str) -> tuple[int, str]:
    """Run ``command`` in the workspace: (exit code, output)."""
    snapshot = await conn.call("process_start", {"command": command, "wait_ms": 30_000})
    while snapshot["running"]:
        snapshot = await conn.call(
            "process_output", {"process_id": snapshot["process_id"], "wait_ms": 30_000}
        )
    return snapshot["exit_code"], snapshot["output"]
