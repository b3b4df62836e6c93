"""What the workspace end-to-end tests share: the REST API as the first admin, the model's
tool-call replies, and ``chatd agent`` run as a workspace's owner would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2

from tests.e2e.server import wait_for
from tests.e2e.turn_harness import Deployment


class Rest:
    """The server's /api/v2 as its first admin."""

    def __init__(self, dep: Deployment) -> None:
        self.base = dep.api.url + "/api/v2"
        self.headers = dep.api.headers
        self.org = dep.api.org_id()

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        r = httpx2.request(method, self.base + path, headers=self.headers, timeout=10, **kw)
        assert r.status_code == expect, r.text
        return r.json() if r.content else None

    def template(self, name: str, **create: Any) -> str:
        """The id of the organization's template ``name`` (made with ``create`` if missing)."""
        listed = self.call("GET", f"/organizations/{self.org}/templates")
        found = {t["name"]: t["id"] for t in listed}
        if name not in found and create:
            made = self.call(
                "POST", f"/organizations/{self.org}/templates", 201, json={"name": name, **create}
            )
            found[name] = made["id"]
        return str(found[name])

    def agent_status(self, workspace_id: str) -> str:
        return str(self.call("GET", f"/workspaces/{workspace_id}")["agent"]["status"])

    def wait_agent(self, workspace_id: str, status: str) -> None:
        wait_for(lambda: self.agent_status(workspace_id) == status, f"the agent to be {status}")


def call(name: str, call_id: str, /, **args: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "args": args, "id": call_id}]}


class ChatdAgent:
    """``chatd agent`` serving an external workspace, as its owner would run it."""

    def __init__(self, url: str, token: str, directory: Path) -> None:
        self.command = [
            sys.executable,
            "-m",
            "chatd.cli.main",
            "agent",
            "--url",
            url,
            "--dir",
            str(directory),
            "--exit-on-stdin-eof",
            "--max-retry-delay",
            "0.5",
        ]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
        self.env["CHATD_AGENT_TOKEN"] = token
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(20)
        self._close()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._close()  # end of stdin: it stops, with its commands
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._close()

    def _close(self) -> None:
        assert self.proc is not None
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
