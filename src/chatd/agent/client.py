"""The connection loop: dial the server, say hello, serve requests, and dial again when the
connection ends, for as long as the agent runs.

Each request runs in its own task, so a slow command does not hold up a file read; a
``cancel`` frame cancels its task. The :class:`Dispatcher` outlives connections: processes
started over one connection are still there, with their output, over the next.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chatd.agent import protocol
from chatd.agent.context import operating_system
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.errors import OpError
from chatd.agent.paths import text
from chatd.agent.streams import Channel, StreamOverflow

log = logging.getLogger("chatd.agent")

# The server refusing the token this many times in a row ends the agent (exit status 3).
AUTH_REFUSALS_MAX = 10
EXIT_AUTH_REFUSED = 3
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


class Backoff:
    """Delays between dials: ``initial`` doubling up to ``maximum``, each varied by up to
    ``jitter`` (a fraction) either way so that many agents do not dial in step."""

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 5.0,
        *,
        jitter: float = 0.2,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self._jitter = jitter
        self._rand = rand
        self._next = initial

    def delay(self) -> float:
        base = self._next
        self._next = min(self._next * 2, self.maximum)
        return min(base * (1 + self._jitter * (2 * self._rand() - 1)), self.maximum)

    def reset(self) -> None:
        self._next = self.initial


def agent_url(url: str) -> str:
    """The WebSocket URL of the agent endpoint below the server's base ``url``."""
    parts = urllib.parse.urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
    path = parts.path.rstrip("/") + protocol.AGENT_PATH
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, parts.query, ""))


async def serve(
    url: str,
    token: str,
    directory: Path,
    *,
    dispatcher: Dispatcher | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_auth_refusals: int = AUTH_REFUSALS_MAX,
) -> int:
    """Serve the server at ``url`` from ``directory`` until cancelled; returns
    ``EXIT_AUTH_REFUSED`` once the server has refused the token ``max_auth_refusals`` times
    in a row. A ``dispatcher`` passed in stays the caller's to close; one made here is
    closed (its processes killed) on the way out."""
    if dispatcher is not None:
        return await _serve(url, token, dispatcher, backoff or Backoff(), sleep, max_auth_refusals)
    own = Dispatcher(directory)
    try:
        return await _serve(url, token, own, backoff or Backoff(), sleep, max_auth_refusals)
    finally:
        await own.close()


async def _serve(
    url: str,
    token: str,
    dispatcher: Dispatcher,
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[None]],
    max_auth_refusals: int,
) -> int:
    target = agent_url(url)
    refusals = 0
    while True:
        try:
            async with connect(
                target,
                additional_headers={protocol.TOKEN_HEADER: token},
                max_size=protocol.MAX_FRAME_BYTES,
                user_agent_header="chatd-agent",
                proxy=None if _loopback(target) else True,
            ) as ws:
                refusals = 0
                log.info("connected to %s", target)
                began = time.monotonic()
                await Session(ws, dispatcher).run()
                if time.monotonic() - began >= backoff.maximum:
                    backoff.reset()  # a connection that held: dial again quickly
                log.info("disconnected: %s", _close_reason(ws))
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                refusals += 1
                log.warning(
                    "the server refused the agent token (HTTP %d, %d time(s) in a row)",
                    status,
                    refusals,
                )
                if refusals >= max_auth_refusals:
                    log.error("giving up: the token was refused %d times", refusals)
                    return EXIT_AUTH_REFUSED
            else:
                refusals = 0
                log.warning("the server refused the connection: HTTP %d", status)
        except (OSError, TimeoutError, WebSocketException) as exc:
            refusals = 0
            log.warning("cannot reach %s: %s", target, exc or type(exc).__name__)
        except Exception:
            refusals = 0
            log.exception("the connection to %s failed", target)
        delay = backoff.delay()
        log.info("retry in %.1f s", delay)
        await sleep(delay)


class Session:
    """One connection: the hello, then one task per request until the socket closes."""

    def __init__(self, ws: ClientConnection, dispatcher: Dispatcher) -> None:
        self._ws = ws
        self._dispatcher = dispatcher
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._channels: dict[int, Channel] = {}
        self._endings: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            await self._ws.send(protocol.encode(hello(self._dispatcher)).encode(), text=True)
            async for message in self._ws:
                self._on_frame(message)
        except ConnectionClosed:
            pass
        finally:
            # Nobody can receive these answers any more; processes keep running.
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _on_frame(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._on_data(message)
            return
        try:
            frame = protocol.decode(message)
        except protocol.ProtocolError as exc:
            log.warning("ignored a frame: %s", exc)
            return
        kind = frame["type"]
        request_id = frame.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            log.warning("ignored a %r frame without an integer id", kind)
        elif kind == "request":
            self._start(request_id, frame.get("op"), frame.get("args", {}))
        elif kind == "cancel":
            task = self._tasks.get(request_id)
            if task is not None:
                task.cancel()
        else:
            log.warning("ignored a frame of unknown type %r", kind)

    def _on_data(self, message: bytes) -> None:
        """Bytes for a streaming request (dropped when it has ended)."""
        try:
            request_id, data = protocol.parse_data_frame(message)
        except protocol.ProtocolError as exc:
            log.warning("ignored a frame: %s", exc)
            return
        channel = self._channels.get(request_id)
        if channel is None:
            return
        try:
            channel.feed(data)
        except StreamOverflow:
            log.warning("request %d: the server sent more than it read; ending it", request_id)
            task = self._tasks.get(request_id)
            if task is not None:
                task.cancel()
                # The server did not cancel it: tell it the stream is over.
                reason = "the server sent more bytes than the operation read"
                ending = protocol.error_response(request_id, protocol.LIMIT, reason)
                sending = asyncio.create_task(self._send_quietly(ending))
                self._endings.add(sending)
                sending.add_done_callback(self._endings.discard)

    async def _send_quietly(self, frame: dict[str, Any]) -> None:
        try:
            await self._ws.send(protocol.encode(frame), text=True)
        except ConnectionClosed:
            pass

    def _start(self, request_id: int, op: Any, args: Any) -> None:
        if request_id in self._tasks:
            log.warning("request %d is already running: the new one is ignored", request_id)
            return
        channel = None
        if isinstance(op, str) and op in self._dispatcher.streams:
            channel = self._channel(request_id)
            self._channels[request_id] = channel
        task = asyncio.create_task(self._answer(request_id, op, args, channel))
        self._tasks[request_id] = task

        def done(_: object) -> None:
            self._tasks.pop(request_id, None)
            self._channels.pop(request_id, None)

        task.add_done_callback(done)

    def _channel(self, request_id: int) -> Channel:
        async def send_event(payload: dict[str, Any]) -> None:
            try:
                data = protocol.encode(protocol.event(request_id, payload)).encode("utf-8")
            except UnicodeEncodeError:
                raise OpError(protocol.FAILED, "an event held text that is not Unicode") from None
            if len(data) > protocol.MAX_FRAME_BYTES:
                raise OpError(protocol.TOO_LARGE, "an event is larger than a frame")
            await self._ws.send(data, text=True)

        async def send_data(data: bytes) -> None:
            await self._ws.send(protocol.data_frame(request_id, data))

        return Channel(send_event, send_data)

    async def _answer(self, request_id: int, op: Any, args: Any, channel: Channel | None) -> None:
        try:
            if not isinstance(op, str):
                raise OpError(protocol.BAD_REQUEST, "a request needs a string 'op'")
            if channel is not None:
                result = await self._dispatcher.stream(op, args, channel)
            else:
                result = await self._dispatcher.handle(op, args)
            frame = protocol.response(request_id, result)
        except OpError as exc:
            frame = protocol.error_response(request_id, exc.code, exc.message)
        except Exception as exc:
            log.exception("operation %s failed", op)
            frame = protocol.error_response(request_id, protocol.FAILED, f"{op} failed: {exc}")
        try:
            await self._ws.send(wire(request_id, op, frame), text=True)
        except ConnectionClosed:
            pass


def wire(request_id: int, op: object, frame: dict[str, Any]) -> bytes:
    """The answer ``frame`` as UTF-8, or an error answer instead when it cannot be sent: text
    that is not Unicode (a lone surrogate), or more than a frame holds."""
    name = text(str(op))
    try:
        data = protocol.encode(frame).encode("utf-8")
    except UnicodeEncodeError:
        message = f"the result of {name} holds text that is not valid Unicode"
        return _error(request_id, protocol.FAILED, message)
    if len(data) > protocol.MAX_FRAME_BYTES:
        message = f"the result of {name} is larger than a frame ({protocol.MAX_FRAME_BYTES} bytes)"
        return _error(request_id, protocol.TOO_LARGE, message)
    return data


def _error(request_id: int, code: str, message: str) -> bytes:
    return protocol.encode(protocol.error_response(request_id, code, message)).encode("utf-8")


def hello(dispatcher: Dispatcher) -> dict[str, Any]:
    return {
        "type": "hello",
        "version": protocol.PROTOCOL_VERSION,
        "directory": text(dispatcher.directory),
        "home": text(dispatcher.home),
        "operating_system": operating_system(),
    }


def _loopback(url: str) -> bool:
    """Whether ``url`` names this host (never reached through a configured proxy)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _close_reason(ws: ClientConnection) -> str:
    code = ws.close_code
    reason = ws.close_reason
    if code is None:
        return "connection lost"
    return f"code {code}" + (f" ({reason})" if reason else "")
