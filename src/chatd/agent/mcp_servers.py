"""The workspace's MCP servers, hosted by the agent: the ``mcp_tools`` and ``mcp_call``
operations.

A server of ``.mcp.json`` (:mod:`chatd.agent.mcp_config`) starts on first use: a stdio one as
a process of the workspace, through the official SDK's stdio client, in the agent's directory
with the workspace's environment plus the entry's ``env`` (so inside the agent's sandbox); an
HTTP or SSE one as a session to its URL. The session stays open for the uses after it. One
whose process exited or whose connection broke is started again on the next use; one whose
entry changed (the file is read at every operation) is stopped and started anew; one no longer
declared is stopped; closing the host stops them all.

Every wait is bounded: a start (the process and ``initialize``) by :data:`START_TIMEOUT`, a
listing by the operation's ``wait_ms`` (a server still starting then is reported as such and
goes on starting), a call by its ``timeout_ms``. Answers are capped (:data:`TEXT_MAX`,
:data:`MEDIA_MAX`, :data:`LISTING_MAX`) so that they fit a frame.

The SDK is imported on first use: an agent whose workspace declares no server never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from chatd.agent import args as a
from chatd.agent import protocol
from chatd.agent.errors import OpError
from chatd.agent.mcp_config import SSE, STDIO, Config, ServerConfig, read_config

if TYPE_CHECKING:
    from anyio.abc import ObjectReceiveStream, ObjectSendStream
    from mcp import ClientSession
    from mcp import types as mcp_types
    from mcp.shared.message import SessionMessage

log = logging.getLogger("chatd.agent")

CLIENT_NAME = "chatd-agent"
START_TIMEOUT = 30.0
LIST_WAIT = 5.0
LIST_WAIT_MAX = 60.0
CALL_TIMEOUT = 60.0
CALL_TIMEOUT_MAX = 600.0
HTTP_TIMEOUT = 30.0
STOP_WAIT = 10.0
MAX_PAGES = 20
MAX_TOOLS = 200  # per server
DESCRIPTION_MAX = 4 * 1024
SCHEMA_MAX = 64 * 1024
LISTING_MAX = 4 * 1024 * 1024  # a whole mcp_tools answer
TEXT_MAX = 1024 * 1024  # the text items of a call's result, in all
MEDIA_MAX = 14 * 1024 * 1024  # the base64 data of its image and audio items, in all
OTHER_MAX = 64 * 1024  # one item of another kind, and the structured content
STDERR_KEPT = 4 * 1024
STDERR_SHOWN = 1024


class MCPHost:
    """The servers of one workspace directory."""

    def __init__(self, directory: Path, env: Mapping[str, str]) -> None:
        self.directory = directory
        self.env = dict(env)
        self.servers: dict[str, Server] = {}
        # Servers no longer declared as they were, until their sessions have ended.
        self.retired: set[Server] = set()

    async def tools(self, args: dict[str, Any]) -> dict[str, Any]:
        """``{servers: [{name, tools} | {name, error, starting?}], error?}``."""
        wait = _seconds(args, "wait_ms", LIST_WAIT, LIST_WAIT_MAX)
        config = await self._config()
        listed = await asyncio.gather(
            *(self._listing(self.servers[s.name], wait) for s in config.servers)
        )
        entries: list[dict[str, Any]] = []
        budget = LISTING_MAX
        for entry in listed:
            cost = len(json.dumps(entry, ensure_ascii=False).encode("utf-8", errors="replace"))
            if cost > budget:
                entry = {"name": entry["name"], "error": "its tools exceed what one answer holds"}
            else:
                budget -= cost
            entries.append(entry)
        entries += [{"name": name, "error": why} for name, why in config.invalid]
        answer: dict[str, Any] = {"servers": entries}
        if config.error:
            answer["error"] = config.error
        return answer

    async def call(self, args: dict[str, Any]) -> dict[str, Any]:
        """``{result}``: the tool's ``CallToolResult`` as JSON (capped)."""
        name = a.string(args, "server")
        tool = a.string(args, "tool")
        arguments = args.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise OpError(protocol.BAD_REQUEST, "arguments must be a JSON object")
        within = _seconds(args, "timeout_ms", CALL_TIMEOUT, CALL_TIMEOUT_MAX)
        config = await self._config()
        server = self.servers.get(name)
        if server is None:
            declared = ", ".join(s.name for s in config.servers) or "none"
            raise OpError(
                protocol.NOT_FOUND,
                f"no MCP server named {name!r} in .mcp.json (declared: {declared})",
            )
        return {"result": await server.call(tool, arguments, within)}

    async def close(self) -> None:
        servers = [*self.servers.values(), *self.retired]
        self.servers, self.retired = {}, set()
        await asyncio.gather(*(s.close() for s in servers))

    async def _config(self) -> Config:
        """The file as it is now; the servers follow it."""
        config = await asyncio.to_thread(read_config, self.directory)
        wanted = {s.name: s for s in config.servers}
        for name, server in list(self.servers.items()):
            if wanted.get(name) != server.config:
                del self.servers[name]
                server.stop()
                if server.ending:
                    self.retired.add(server)
        self.retired = {s for s in self.retired if s.ending}
        for name, server_config in wanted.items():
            if name not in self.servers:
                self.servers[name] = Server(server_config, self.env, self.directory)
        return config

    async def _listing(self, server: Server, wait: float) -> dict[str, Any]:
        name = server.config.name
        try:
            async with asyncio.timeout(wait):
                tools = await server.tools()
        except TimeoutError:
            if server.starting:
                return {"name": name, "error": "still starting", "starting": True}
            return {"name": name, "error": f"did not list its tools within {wait:g} s"}
        except OpError as exc:
            return {"name": name, "error": exc.message}
        return {"name": name, "tools": [t for t in map(_tool_entry, tools) if t is not None]}


@dataclass
class _Run:
    """One start of a server: the task owning its session, the session once ready, and what
    ends it."""

    task: asyncio.Task[None] | None = None
    ready: asyncio.Future[ClientSession] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    finish: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    @property
    def live(self) -> bool:
        return self.task is not None and not self.task.done() and not self.finish.is_set()

    def end(self) -> None:
        self.finish.set()


class Server:
    """One declared server and its current session (started on use)."""

    def __init__(self, config: ServerConfig, env: Mapping[str, str], cwd: Path) -> None:
        self.config = config
        self.env = env
        self.cwd = cwd
        self.current: _Run | None = None
        self.ending: set[asyncio.Task[None]] = set()
        self.stderr = bytearray()

    @property
    def starting(self) -> bool:
        return self.current is not None and self.current.live and not self.current.ready.done()

    async def session(self) -> ClientSession:
        """The live session, started when there is none (the caller bounds the wait; the
        start goes on without it)."""
        run = self.current
        if run is None or not run.live:
            if run is not None:
                self._retire(run)
            run = self.current = _Run()
            run.ready.add_done_callback(_retrieve)
            run.task = asyncio.create_task(self._run(run), name=f"mcp-{self.config.name}")
        return await asyncio.shield(run.ready)

    async def tools(self) -> list[mcp_types.Tool]:
        from mcp import types as mcp_types

        for attempt in (1, 2):
            session = await self.session()
            try:
                found: list[mcp_types.Tool] = []
                cursor: str | None = None
                for _ in range(MAX_PAGES):
                    params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    page = await session.list_tools(params=params)
                    found.extend(page.tools)
                    cursor = page.next_cursor
                    if not cursor or len(found) >= MAX_TOOLS:
                        break
                return found[:MAX_TOOLS]
            except Exception as exc:
                broken = self._broke(exc)
                if attempt == 1 and broken:
                    continue  # it died since the last use: once more, on a new start
                raise OpError(protocol.FAILED, self._failed(exc, stderr=broken)) from None
        raise AssertionError("unreachable")

    async def call(self, tool: str, arguments: dict[str, Any], within: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(within):
                session = await self.session()
                result = await session.call_tool(tool, arguments, read_timeout_seconds=within)
        except TimeoutError:
            message = f"MCP server {self.config.name} did not answer within {within:g} s"
            raise OpError(protocol.FAILED, message) from None
        except OpError:
            raise
        except Exception as exc:
            broken = self._broke(exc)
            raise OpError(protocol.FAILED, self._failed(exc, stderr=broken)) from None
        return capped(result)

    def stop(self) -> None:
        """End the session (in the background: :meth:`close` waits for it)."""
        if self.current is not None:
            self._retire(self.current)
            self.current = None

    async def close(self) -> None:
        self.stop()
        tasks = set(self.ending)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=STOP_WAIT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _retire(self, run: _Run) -> None:
        run.end()
        run.scope.cancel()
        if run.task is not None and not run.task.done():
            self.ending.add(run.task)
            run.task.add_done_callback(self.ending.discard)

    def _broke(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the session is unusable (then it is ended: the next use
        starts the server again); a server's own error answer leaves it be."""
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        if isinstance(exc, MCPError) and exc.code != CONNECTION_CLOSED:
            return False
        if self.current is not None:
            self._retire(self.current)
            self.current = None
        return True

    def _failed(self, exc: BaseException, *, stderr: bool = True) -> str:
        """What went wrong, with the end of the server's stderr when it broke down."""
        message = f"MCP server {self.config.name} failed: {_reason(exc)}"
        if not stderr:
            return message
        tail = self.stderr.decode("utf-8", errors="replace").strip()[-STDERR_SHOWN:]
        return f"{message}\n{tail}" if tail else message

    async def _run(self, run: _Run) -> None:
        from mcp import ClientSession
        from mcp import types as mcp_types
        from mcp.shared.message import SessionMessage

        info = mcp_types.Implementation(name=CLIENT_NAME, version=protocol.PROTOCOL_VERSION)
        try:
            with run.scope:
                async with self._transport() as (read, write):
                    send, receive = anyio.create_memory_object_stream[SessionMessage | Exception]()
                    async with anyio.create_task_group() as group:
                        group.start_soon(_forward, read, send, run.finish)
                        async with ClientSession(receive, write, client_info=info) as session:
                            with anyio.fail_after(START_TIMEOUT):
                                await session.initialize()
                            run.ready.set_result(session)
                            log.info("MCP server %s started", self.config.name)
                            await run.finish.wait()
                        group.cancel_scope.cancel()
        except Exception as exc:
            if not run.ready.done():
                run.ready.set_exception(OpError(protocol.FAILED, self._failed(exc)))
            log.info("MCP server %s ended: %s", self.config.name, _reason(exc))
        finally:
            run.finish.set()
            if not run.ready.done():
                stopped = f"MCP server {self.config.name} was stopped"
                run.ready.set_exception(OpError(protocol.FAILED, stopped))

    def _transport(
        self,
    ) -> AbstractAsyncContextManager[tuple[ObjectReceiveStream[Any], ObjectSendStream[Any]]]:
        config = self.config
        if config.transport == STDIO:
            return self._stdio()
        if config.transport == SSE:
            from mcp.client.sse import sse_client

            return sse_client(config.url, headers=dict(config.headers), timeout=HTTP_TIMEOUT)
        return _http(config)

    @asynccontextmanager
    async def _stdio(self) -> AsyncIterator[tuple[Any, Any]]:
        """The stdio client, its stderr kept (the end of it) for the failure messages."""
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        config = self.config
        params = StdioServerParameters(
            command=config.command,
            args=list(config.args),
            env={**self.env, **dict(config.env)},
            cwd=self.cwd,
        )
        self.stderr.clear()
        read_end, write_end = os.pipe()
        errlog = os.fdopen(write_end, "w")  # closed once the process has its copy
        transport: asyncio.BaseTransport | None = None
        try:
            pipe = os.fdopen(read_end, "rb", buffering=0)  # the transport owns it
            loop = asyncio.get_running_loop()
            transport, _ = await loop.connect_read_pipe(lambda: _Tail(self.stderr), pipe)
            async with stdio_client(params, errlog=errlog) as streams:
                errlog.close()
                yield streams
        finally:
            errlog.close()
            if transport is not None:
                transport.close()


class _Tail(asyncio.Protocol):
    """Keeps the last :data:`STDERR_KEPT` bytes written to a pipe."""

    def __init__(self, kept: bytearray) -> None:
        self.kept = kept

    def data_received(self, data: bytes) -> None:
        self.kept += data
        del self.kept[:-STDERR_KEPT]


@asynccontextmanager
async def _http(config: ServerConfig) -> AsyncIterator[tuple[Any, Any]]:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(
        headers=dict(config.headers), timeout=httpx2.Timeout(HTTP_TIMEOUT), follow_redirects=True
    )
    async with http, streamable_http_client(config.url, http_client=http) as streams:
        yield streams


async def _forward(
    source: ObjectReceiveStream[SessionMessage | Exception],
    sink: ObjectSendStream[SessionMessage | Exception],
    finish: anyio.Event,
) -> None:
    """Pass the server's messages on to the session; their end (the process exited, the
    connection closed) ends the run."""
    async with sink:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            async for item in source:
                await sink.send(item)
    finish.set()


def _tool_entry(tool: mcp_types.Tool) -> dict[str, Any] | None:
    """A tool as listed: its schema must fit :data:`SCHEMA_MAX`, its description is cut."""
    if not tool.name:
        return None
    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
    if len(json.dumps(schema, ensure_ascii=False)) > SCHEMA_MAX:
        return None
    description = _cut(tool.description or "", DESCRIPTION_MAX)
    return {"name": tool.name, "description": description, "input_schema": schema}


def capped(result: mcp_types.CallToolResult) -> dict[str, Any]:
    """The result as JSON within the caps: text cut (and marked) past :data:`TEXT_MAX` in
    all, an image or audio item past :data:`MEDIA_MAX` in all and any other item or the
    structured content past :data:`OTHER_MAX` replaced by a note."""
    data: dict[str, Any] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    text_left, media_left = TEXT_MAX, MEDIA_MAX
    content: list[dict[str, Any]] = []
    for item in data.get("content") or []:
        kind = str(item.get("type"))
        if kind == "text":
            if text_left <= 0:
                continue
            text = str(item.get("text") or "")
            kept = _cut(text, text_left)
            text_left -= len(kept.encode("utf-8"))
            if kept != text:
                kept += f"\n[the result's text was cut at {TEXT_MAX} bytes]"
                text_left = 0
            content.append({**item, "text": kept})
        elif kind in ("image", "audio"):
            size = len(str(item.get("data") or ""))
            if size > media_left:
                content.append({"type": "text", "text": f"[{kind} content too large]"})
            else:
                media_left -= size
                content.append(item)
        elif len(json.dumps(item, ensure_ascii=False)) > OTHER_MAX:
            content.append({"type": "text", "text": f"[{kind} content too large]"})
        else:
            content.append(item)
    data["content"] = content
    structured = data.get("structuredContent")
    if structured is not None and len(json.dumps(structured, ensure_ascii=False)) > OTHER_MAX:
        del data["structuredContent"]
    data.pop("_meta", None)
    return data


def _cut(text: str, limit: int) -> str:
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def _seconds(args: dict[str, Any], name: str, default: float, maximum: float) -> float:
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise OpError(protocol.BAD_REQUEST, f"{name} must be a number of milliseconds")
    return min(value / 1000, maximum)


def _reason(exc: BaseException) -> str:
    """The innermost cause, in words (a task group wraps what failed in it)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = getattr(exc, "message", None) if not isinstance(exc, OSError) else None
    return str(message or exc or type(exc).__name__)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a start's failure as seen (nobody may be waiting for it any more)."""
    if not future.cancelled():
        future.exception()
