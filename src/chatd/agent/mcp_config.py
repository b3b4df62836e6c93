"""The workspace's MCP servers as its ``.mcp.json`` declares them.

The file (in the agent's directory) holds ``{"mcpServers": {name: entry}}``; an entry is a
stdio server ``{"command", "args"?, "env"?}`` (``"type": "stdio"`` optional) or a remote one
``{"type": "http", "url", "headers"?}`` (``"sse"`` too; a ``url`` without a type is HTTP).
An entry that is none of these is kept as the reason it is invalid, so the listing can say so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatd.agent.errors import OpError
from chatd.agent.files import load
from chatd.agent.paths import inside

CONFIG_FILE = ".mcp.json"
# The file is read up to this size; servers past MAX_SERVERS are left out.
CONFIG_MAX = 256 * 1024
MAX_SERVERS = 50
STDIO = "stdio"
HTTP = "http"
SSE = "sse"
_HTTP_TYPES = {"http": HTTP, "streamable_http": HTTP, "streamable-http": HTTP, "sse": SSE}


@dataclass(frozen=True)
class ServerConfig:
    """One server: how to start it (stdio) or where to reach it (http, sse)."""

    name: str
    transport: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Config:
    """The declared servers in the file's order, and the entries that are not valid (by
    name: why); ``error`` when the file itself cannot be used."""

    servers: tuple[ServerConfig, ...] = ()
    invalid: tuple[tuple[str, str], ...] = ()
    error: str | None = None


def read_config(root: Path) -> Config:
    """The ``.mcp.json`` of ``root``: no servers when there is none."""
    path = root / CONFIG_FILE
    if not path.exists() and not path.is_symlink():
        return Config()
    real = Path(os.path.realpath(path))
    if not inside(root, real):
        return Config(error=f"{CONFIG_FILE} points outside the workspace")
    try:
        data = load(real, CONFIG_FILE, CONFIG_MAX)
    except OpError as exc:
        return Config(error=exc.message)
    try:
        document = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError as exc:
        return Config(error=f"{CONFIG_FILE} is not valid JSON: {exc}")
    declared = document.get("mcpServers") if isinstance(document, dict) else None
    if not isinstance(declared, dict):
        return Config(error=f'{CONFIG_FILE} has no "mcpServers" object')
    servers: list[ServerConfig] = []
    invalid: list[tuple[str, str]] = []
    for name, entry in list(declared.items())[:MAX_SERVERS]:
        parsed = parse_entry(str(name), entry)
        if isinstance(parsed, str):
            invalid.append((str(name), parsed))
        else:
            servers.append(parsed)
    return Config(tuple(servers), tuple(invalid))


def parse_entry(name: str, entry: Any) -> ServerConfig | str:
    """The server an entry declares, or why it declares none."""
    if not name:
        return "a server needs a name"
    if not isinstance(entry, dict):
        return "the entry is not a JSON object"
    kind = entry.get("type")
    if kind is None:
        kind = "http" if "url" in entry and "command" not in entry else STDIO
    if kind == STDIO:
        command = entry.get("command")
        if not isinstance(command, str) or not command:
            return 'a stdio server needs a "command" string'
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return '"args" must be a list of strings'
        env = _strings(entry.get("env", {}))
        if env is None:
            return '"env" must map names to strings'
        return ServerConfig(name, STDIO, command=command, args=tuple(args), env=env)
    transport = _HTTP_TYPES.get(kind) if isinstance(kind, str) else None
    if transport is None:
        return f"unknown server type {kind!r} (stdio, http or sse)"
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return f'an {kind} server needs an http(s) "url"'
    headers = _strings(entry.get("headers", {}))
    if headers is None:
        return '"headers" must map names to strings'
    return ServerConfig(name, transport, url=url, headers=headers)


def _strings(value: Any) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(value, dict):
        return None
    if not all(isinstance(v, str) for v in value.values()):
        return None
    pairs = tuple((str(k), v) for k, v in value.items())
    if any(not k or "\0" in k or "\0" in v or "=" in k for k, v in pairs):
        return None
    return pairs

