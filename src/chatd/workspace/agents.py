"""The agents connected to this replica: one live WebSocket per workspace.

:class:`WebSocketAgentConn` is :class:`~chatd.workspace.conn.AgentConn` over the socket an
agent dialled in on: each call sends a ``request`` with a new id and waits on a future that
the one reader loop (:meth:`WebSocketAgentConn.serve`) resolves with the ``response``. A
caller that is cancelled sends ``cancel`` for its request. When the socket closes, every
call still waiting raises :class:`~chatd.workspace.conn.AgentUnavailable`.

:class:`AgentHub` maps each workspace to its live connection: a newer connection replaces
(and closes) an older one, and :meth:`AgentHub.wait` returns once one is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from chatd.agent import protocol
from chatd.workspace.conn import (
    AgentConn,
    AgentOpError,
    AgentStream,
    AgentStreamEnded,
    AgentUnavailable,
)

log = structlog.get_logger(__name__)

DISCONNECTED_DURING_CALL = "the workspace agent disconnected during the call"
NOT_CONNECTED = "the workspace agent is not connected"
CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
MAX_REASON_BYTES = 123
# What one stream holds that its reader has not taken yet (events or byte frames); a reader
# that falls this far behind loses the stream (it is cancelled on the agent).
STREAM_BACKLOG = 256
STREAM_FELL_BEHIND = "the stream's reader fell behind"


@dataclass(frozen=True)
class Hello:
    """What an agent says of itself first."""

    version: str
    directory: str
    home: str
    operating_system: str

    @classmethod
    def parse(cls, frame: dict[str, Any]) -> Hello:
        """Raises :class:`~chatd.agent.protocol.ProtocolError` for anything but a hello."""
        if frame.get("type") != "hello":
            raise protocol.ProtocolError("the first frame must be a hello")
        values = {}
        for name in ("version", "directory", "home", "operating_system"):
            value = frame.get(name, "")
            if not isinstance(value, str) or len(value) > 4096:
                raise protocol.ProtocolError(f"hello: {name} must be a string")
            values[name] = value
        if not values["directory"]:
            raise protocol.ProtocolError("hello: directory is required")
        return cls(**values)


class _Stream(AgentStream):
    """A streaming request on a :class:`WebSocketAgentConn`: the reader loop pushes what the
    agent sends into a bounded queue; the last item pushed is the exception that ends it."""

    def __init__(self, conn: WebSocketAgentConn, request_id: int) -> None:
        self._conn = conn
        self.request_id = request_id
        self._items: asyncio.Queue[dict[str, Any] | bytes | Exception] = asyncio.Queue()
        self.ended = False

    def push(self, item: dict[str, Any] | bytes) -> bool:
        """Queue ``item``; False (and the stream ended) when the reader fell behind."""
        if self.ended:
            return True
        if self._items.qsize() >= STREAM_BACKLOG:
            self.end(AgentUnavailable(STREAM_FELL_BEHIND))
            return False
        self._items.put_nowait(item)
        return True

    def end(self, exc: Exception) -> None:
        if not self.ended:
            self.ended = True
            self._items.put_nowait(exc)

    async def receive(self) -> dict[str, Any] | bytes:
        item = await self._items.get()
        if isinstance(item, Exception):
            self._items.put_nowait(item)  # every later receive raises it too
            raise item
        return item

    async def send_data(self, data: bytes) -> None:
        if self.ended:
            raise AgentUnavailable("the stream has ended")
        await self._conn.send_bytes(protocol.data_frame(self.request_id, data))


class WebSocketAgentConn(AgentConn):
    """One agent's connection, on an accepted WebSocket."""

    def __init__(
        self,
        websocket: WebSocket,
        *,
        workspace_id: uuid.UUID,
        agent_id: uuid.UUID,
        build_id: uuid.UUID,
        hello: Hello,
    ) -> None:
        self.websocket = websocket
        self.workspace_id = workspace_id
        self.agent_id = agent_id
        self.build_id = build_id
        self.directory = hello.directory
        self.home = hello.home
        self.operating_system = hello.operating_system
        self.version = hello.version
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._streams: dict[int, _Stream] = {}
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()

    @property
    def closed(self) -> bool:
        return self._closed

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise AgentUnavailable(NOT_CONNECTED)
        request_id = self._new_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._send(protocol.request(request_id, op, args))
            frame = await future
        except asyncio.CancelledError:
            if request_id in self._pending and not self._closed:
                self._in_background(self._send_quietly(protocol.cancel(request_id)))
            raise
        finally:
            self._pending.pop(request_id, None)
        error = frame.get("error")
        if error is not None:
            raise AgentOpError(error["code"], error["message"])
        result: dict[str, Any] = frame["result"]
        return result

    @contextlib.asynccontextmanager
    async def stream(self, op: str, args: dict[str, Any]) -> AsyncIterator[AgentStream]:
        if self._closed:
            raise AgentUnavailable(NOT_CONNECTED)
        stream = _Stream(self, self._new_id())
        self._streams[stream.request_id] = stream
        try:
            await self._send(protocol.request(stream.request_id, op, args))
            yield stream
        finally:
            self._streams.pop(stream.request_id, None)
            if not stream.ended and not self._closed:
                self._in_background(self._send_quietly(protocol.cancel(stream.request_id)))
            stream.end(AgentUnavailable("the stream was closed"))

    async def _send(self, frame: dict[str, Any]) -> None:
        try:
            async with self._send_lock:
                await self.websocket.send_text(protocol.encode(frame))
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._end()
            raise AgentUnavailable(DISCONNECTED_DURING_CALL) from None

    async def send_bytes(self, data: bytes) -> None:
        try:
            async with self._send_lock:
                await self.websocket.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._end()
            raise AgentUnavailable(DISCONNECTED_DURING_CALL) from None

    async def _send_quietly(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(AgentUnavailable):
            await self._send(frame)

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def serve(self) -> None:
        """Read the agent's frames until the socket closes (then every waiting call fails).
        A frame the protocol does not allow closes the socket with 1008."""
        try:
            while not self._closed:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    text = message.get("text")
                    if text is None:
                        self._deliver_data(message.get("bytes") or b"")
                    else:
                        self._deliver(protocol.decode(text))
                except protocol.ProtocolError as exc:
                    log.warning(
                        "workspace agent sent a bad frame",
                        workspace_id=str(self.workspace_id),
                        error=str(exc),
                    )
                    await self.close(CLOSE_POLICY, f"protocol error: {exc}")
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        finally:
            self._end()

    def _deliver_data(self, message: bytes) -> None:
        request_id, data = protocol.parse_data_frame(message)
        stream = self._streams.get(request_id)
        if stream is not None:
            self._push(stream, data)

    def _push(self, stream: _Stream, item: dict[str, Any] | bytes) -> None:
        if not stream.push(item):
            self._in_background(self._send_quietly(protocol.cancel(stream.request_id)))

    def _deliver(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind not in ("response", "event"):
            raise protocol.ProtocolError(f"unexpected frame type {kind!r}")
        request_id = frame.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            raise protocol.ProtocolError(f"a {kind} needs an integer id")
        if kind == "event":
            payload = frame.get("event")
            if not isinstance(payload, dict):
                raise protocol.ProtocolError("an event carries an object")
            stream = self._streams.get(request_id)
            if stream is not None:
                self._push(stream, payload)
            return
        result, error = frame.get("result"), frame.get("error")
        if error is not None:
            if not (
                isinstance(error, dict)
                and isinstance(error.get("code"), str)
                and isinstance(error.get("message"), str)
            ):
                raise protocol.ProtocolError("a response error is {code, message}")
        elif not isinstance(result, dict):
            raise protocol.ProtocolError("a response carries a result object or an error")
        stream = self._streams.get(request_id)
        if stream is not None:
            if error is not None:
                stream.end(AgentOpError(error["code"], error["message"]))
            else:
                stream.end(AgentStreamEnded(frame["result"]))
            return
        future = self._pending.get(request_id)
        if future is not None and not future.done():
            future.set_result(frame)  # a response to a cancelled request is dropped

    def _end(self) -> None:
        """No more answers: every waiting call fails."""
        self._closed = True
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(AgentUnavailable(DISCONNECTED_DURING_CALL))
        for stream in self._streams.values():
            stream.end(AgentUnavailable(DISCONNECTED_DURING_CALL))

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close the socket (the reader loop then ends)."""
        self._end()
        reason = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await self.websocket.close(code=code, reason=reason)


class AgentHub:
    """workspace id -> the live connection of its agent, in this process."""

    def __init__(self) -> None:
        self._conns: dict[uuid.UUID, WebSocketAgentConn] = {}
        self._waiters: dict[uuid.UUID, set[asyncio.Future[None]]] = {}

    def get(self, workspace_id: uuid.UUID) -> WebSocketAgentConn | None:
        conn = self._conns.get(workspace_id)
        return conn if conn is not None and not conn.closed else None

    def register(self, conn: WebSocketAgentConn) -> WebSocketAgentConn | None:
        """Make ``conn`` the workspace's connection; the one it replaces (to close)."""
        previous = self._conns.get(conn.workspace_id)
        self._conns[conn.workspace_id] = conn
        for waiter in self._waiters.pop(conn.workspace_id, set()):
            if not waiter.done():
                waiter.set_result(None)
        return previous if previous is not conn else None

    def unregister(self, conn: WebSocketAgentConn) -> None:
        if self._conns.get(conn.workspace_id) is conn:
            del self._conns[conn.workspace_id]

    async def wait(self, workspace_id: uuid.UUID, within: float) -> WebSocketAgentConn | None:
        """The workspace's live connection, waiting up to ``within`` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (conn := self.get(workspace_id)) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(workspace_id, set()).add(waiter)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, remaining)
            finally:
                waiters = self._waiters.get(workspace_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[workspace_id]
        return conn

    async def disconnect(self, workspace_id: uuid.UUID, reason: str) -> None:
        """Close the workspace's connection, if it has one."""
        conn = self._conns.pop(workspace_id, None)
        if conn is not None:
            await conn.close(CLOSE_NORMAL, reason)

    async def close(self) -> None:
        """Close every connection (server shutdown)."""
        conns, self._conns = list(self._conns.values()), {}
        await asyncio.gather(*(c.close(CLOSE_NORMAL, "server shutting down") for c in conns))
