"""The workspace tools end to end: tool calls through a real server to its agents.

A chatd app is served on 127.0.0.1 in this process (SQLite in a temporary data dir, the
rate limit off, no chat workers), so the tools run as a turn runs them: the tool objects of
the built-in registry, a ``ToolCallContext`` as the engine builds it, the turn's
``WorkspaceAccess``, the server's ``Workspaces`` service and agent hub, the agent's WebSocket.
Three workspaces, each with a chat bound to it (made over the REST API):

- ``local, bwrap``: template ``scratch``, its agent started by the server in bubblewrap;
- ``local, none``: the same on a second server with ``CHATD_SANDBOX=none``;
- ``external``: an external template's workspace, its agent a ``python -m chatd.agent``
  subprocess given the token of the create answer, dialling in on loopback.

For each: N (default 300) sequential calls (after 20 of warm-up) of ``execute`` (``true``),
``read_file`` (a 20-line file) and ``write_file`` (1 KiB), with p50/p99/max in ms; and the
RSS of the idle agent (VmRSS from /proc one second after the calls; for bubblewrap, of the
Python process inside the sandbox). The event loop is uvloop, as ``chatd server`` runs.

Reproduce (~1 minute):

    .venv/bin/python bench/tools.py [--count 300]

The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import structlog
import uvicorn
import uvloop

from chatd.agent import protocol
from chatd.api.app import create_app
from chatd.bootstrap import create_first_user
from chatd.engine.toolset import Toolset, run_call
from chatd.llm.types import ToolCall
from chatd.secret_key import box_for
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.tools.builtin import builtin_registry
from chatd.tools.registry import ToolCallContext
from chatd.tools.scope import ChatFacts, TurnScope
from chatd.tools.workspace_access import WorkspaceAccess
from chatd.workspace.service import Workspaces

COMMAND = ".venv/bin/python bench/tools.py"
CONNECT = 60.0
WARM_UP = 20
SMALL_FILE = "".join(f"line {i}: some text of a small file\n" for i in range(1, 21))
WRITTEN = "x" * 1023 + "\n"
CALLS = {
    "execute true": ("execute", {"command": "true"}),
    "read_file": ("read_file", {"path": "small.txt"}),
    "write_file": ("write_file", {"path": "written.txt", "content": WRITTEN}),
}


@dataclass
class Server:
    app: Any
    db: Database
    url: str
    headers: dict[str, str]
    org: str
    owner: uuid.UUID

    @property
    def service(self) -> Workspaces:
        workspaces: Workspaces = self.app.state.workspaces
        return workspaces


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def server(root: Path, sandbox: str) -> AsyncIterator[Server]:
    """A served app whose first user is the owner of everything here."""
    port = free_port()
    settings = Settings(
        data_dir=root / "data",
        config_dir=root / "config",
        http_address=f"127.0.0.1:{port}",
        sandbox=sandbox,
        first_user_email="owner@x.test",
        first_user_username="owner",
        first_user_password="bench-password-1",
        openai_api_key="",
        anthropic_api_key="",
        workers_enabled=False,
        rate_limit_per_minute=0,
    )
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.resolved_database_url(), secrets=box_for(settings))
    app = create_app(settings, db)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        ws_max_size=protocol.MAX_FRAME_BYTES,
    )
    serving = uvicorn.Server(config)
    try:
        async with app.router.lifespan_context(app):
            first = await create_first_user(db, settings)
            assert first is not None
            task = asyncio.create_task(serving.serve())
            while not serving.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            try:
                url = f"http://127.0.0.1:{port}"
                headers = {"Coder-Session-Token": first.token}
                async with httpx2.AsyncClient(base_url=url, headers=headers) as http:
                    me = (await http.get("/api/v2/users/me")).json()
                yield Server(app, db, url, headers, me["organization_ids"][0], uuid.UUID(me["id"]))
            finally:
                serving.should_exit = True
                await task
    finally:
        await db.close()


async def rest(srv: Server, method: str, path: str, **kw: Any) -> Any:
    async with httpx2.AsyncClient(base_url=srv.url, headers=srv.headers, timeout=60) as http:
        r = await http.request(method, path, **kw)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


async def workspace(srv: Server, template: str) -> dict[str, Any]:
    """A new workspace of the owner from ``template`` (made when it is not a built-in)."""
    templates = f"/api/v2/organizations/{srv.org}/templates"
    found = {t["name"]: t["id"] for t in await rest(srv, "GET", templates)}
    if template not in found:
        made = await rest(srv, "POST", templates, json={"name": template, "kind": template})
        found[template] = made["id"]
    body = {"template_id": found[template], "name": f"bench-{uuid.uuid4().hex[:6]}"}
    created: dict[str, Any] = await rest(
        srv, "POST", f"/api/v2/organizations/{srv.org}/members/me/workspaces", json=body
    )
    return created


async def bound_chat(srv: Server, workspace_id: str) -> str:
    """A chat bound to the workspace (no worker runs its turn)."""
    chats = "/api/experimental/chats"
    await rest(
        srv,
        "POST",
        f"{chats}/providers",
        json={"provider": "openai-compat", "base_url": "http://127.0.0.1:9/v1"},
    )
    model = await rest(
        srv,
        "POST",
        f"{chats}/model-configs",
        json={"provider": "openai-compat", "model": "m", "context_limit": 100000},
    )
    body = {
        "organization_id": srv.org,
        "content": [{"type": "text", "text": "bench"}],
        "model_config_id": model["id"],
        "workspace_id": workspace_id,
    }
    return str((await rest(srv, "POST", chats, json=body))["id"])


class Caller:
    """Calls tools as one turn of the chat does."""

    def __init__(self, srv: Server, chat_id: str, workspace_id: str) -> None:
        self.facts = ChatFacts(uuid.UUID(chat_id), srv.owner, uuid.UUID(srv.org))
        self.toolset = Toolset.build(builtin_registry(), None, self.facts)
        access = WorkspaceAccess(
            chat_id=self.facts.chat_id,
            db=srv.db,
            hub=srv.app.state.hub,
            service=srv.service,
            workspace_id=uuid.UUID(workspace_id),
        )
        self.scope = TurnScope(self.facts, srv.db, srv.app.state.hub, access)

    async def call(self, name: str, args: dict[str, Any]) -> float:
        """One call's seconds."""
        call = ToolCall(f"call_{uuid.uuid4().hex[:8]}", name, json.dumps(args))
        ctx = ToolCallContext(self.facts.chat_id, self.facts.owner_id, call.id, self.scope)
        began = time.perf_counter()
        output = await run_call(self.toolset, call, ctx)
        took = time.perf_counter() - began
        assert not output.is_error, output.text
        return took


async def measure(caller: Caller, count: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for label, (name, args) in CALLS.items():
        for _ in range(WARM_UP):
            await caller.call(name, args)
        samples[label] = [await caller.call(name, args) for _ in range(count)]
    return samples


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def agent_process(root_pid: int) -> int:
    """The Python agent process at or below ``root_pid`` (bubblewrap runs it as a child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    todo = [root_pid]
    while todo:
        pid = todo.pop(0)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"chatd.agent" in argv and not argv[0].endswith(b"bwrap"):
            return pid
        todo += children.get(pid, [])
    raise RuntimeError(f"no agent process below {root_pid}")


async def local_case(root: Path, sandbox: str, count: int) -> tuple[dict[str, list[float]], float]:
    async with server(root, sandbox) as srv:
        made = await workspace(srv, "scratch")
        key = uuid.UUID(made["id"])
        await srv.service.connection(key, wait=CONNECT)
        directory = srv.service.data_dir / "workspaces" / made["id"]
        (directory / "small.txt").write_text(SMALL_FILE)
        caller = Caller(srv, await bound_chat(srv, made["id"]), made["id"])
        samples = await measure(caller, count)
        await asyncio.sleep(1.0)  # idle
        pid = srv.service.launcher.pid(key)
        assert pid is not None
        return samples, rss_mib(agent_process(pid))


async def external_case(root: Path, count: int) -> tuple[dict[str, list[float]], float]:
    async with server(root, "bwrap") as srv:
        made = await workspace(srv, "external")
        directory = root / "external"
        directory.mkdir()
        (directory / "small.txt").write_text(SMALL_FILE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        env[protocol.TOKEN_ENV] = made["agent_token"]
        agent = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chatd.agent",
            "--url",
            srv.url,
            "--dir",
            str(directory),
            "--exit-on-stdin-eof",
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await srv.service.connection(uuid.UUID(made["id"]), wait=CONNECT)
            caller = Caller(srv, await bound_chat(srv, made["id"]), made["id"])
            samples = await measure(caller, count)
            await asyncio.sleep(1.0)  # idle
            return samples, rss_mib(agent.pid)
        finally:
            assert agent.stdin is not None
            agent.stdin.close()
            await agent.wait()


def figures(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in ms."""
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
    return statistics.median(ms), p99, ms[-1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    options = parser.parse_args()
    # The server's own log lines (agents connecting, their output) are not figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rows = [("workspace", "call", "p50 ms", "p99 ms", "max ms", "idle agent RSS MiB")]
    with tempfile.TemporaryDirectory() as tmp:
        for name, sandbox in (("local, bwrap", "bwrap"), ("local, none", "none"), ("external", "")):
            root = Path(tmp, sandbox or "external")
            if sandbox:
                samples, rss = await local_case(root, sandbox, options.count)
            else:
                samples, rss = await external_case(root, options.count)
            for label, taken in samples.items():
                p50, p99, most = figures(taken)
                rows.append((name, label, f"{p50:.2f}", f"{p99:.2f}", f"{most:.2f}", f"{rss:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"\nreproduce: {COMMAND} --count {options.count}")


if __name__ == "__main__":
    uvloop.run(main())
