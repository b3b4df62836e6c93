"""Fake OpenAI and Anthropic servers that speak the real wire formats, driven by a script.

One Starlette app serves ``POST /v1/chat/completions`` (OpenAI, and every OpenAI-compatible
client) and ``POST /v1/messages`` (Anthropic), streamed or not as the request asks. Both take
their answers from one shared script queue (see :mod:`chatd.testing.script` for the format)
and record every request body in :attr:`FakeProvider.requests`.

For processes that cannot reach the object (end-to-end tests), the same app offers
``POST /fake/script`` (append entries; JSON list), ``DELETE /fake/script`` (drop the entries
not yet used), ``GET /fake/requests`` and
``POST /fake/gates/{name}`` (open a gate that replies wait behind, :mod:`chatd.testing.gates`).

Given ``api_keys``, it checks the key of every model call (``Authorization: Bearer`` or
``x-api-key``) and answers one that is not among them with the provider's 401, before the
script is consulted.

Run it in-process with :mod:`chatd.testing.runner`, or as ``chatd dev fake-provider``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chatd.testing import anthropic_wire, openai_wire
from chatd.testing.frames import DELTA, END, Frame
from chatd.testing.gates import Gates
from chatd.testing.script import (
    HttpFault,
    Reply,
    StreamFault,
    default_reply,
    last_user_text,
    parse_script,
)

OPENAI, ANTHROPIC = "openai", "anthropic"


@dataclass(frozen=True)
class RecordedRequest:
    endpoint: str  # "openai" or "anthropic"
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


@dataclass(frozen=True)
class _Wire:
    stream_frames: Callable[[Reply, str, str], Iterator[Frame]]
    complete: Callable[[Reply, str, str], dict[str, Any]]
    error_body: Callable[[HttpFault], Any]
    stream_error_frame: Callable[[StreamFault], str]
    id_prefix: str


_WIRES = {
    OPENAI: _Wire(
        openai_wire.stream_frames,
        openai_wire.completion,
        openai_wire.error_body,
        openai_wire.stream_error_frame,
        "chatcmpl-",
    ),
    ANTHROPIC: _Wire(
        anthropic_wire.stream_frames,
        anthropic_wire.message,
        anthropic_wire.error_body,
        anthropic_wire.stream_error_frame,
        "msg_",
    ),
}


class FakeProvider:
    """The script queue, the recorded requests, and the ASGI app serving them."""

    def __init__(
        self, script: list[dict[str, Any]] | None = None, *, api_keys: Collection[str] = ()
    ) -> None:
        self.api_keys = frozenset(api_keys)  # empty: any key (or none) is accepted
        self._queue: list[Reply] = []
        self._added = 0
        self.requests: list[RecordedRequest] = []
        # Stalled responses wait until release() (the runners call it when they stop).
        self._released = False
        self._release_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.gates = Gates()
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/fake/script", self._add_script, methods=["POST"]),
                Route("/fake/script", self._clear_script, methods=["DELETE"]),
                Route("/fake/requests", self._list_requests, methods=["GET"]),
                Route("/fake/gates/{name}", self._open_gate, methods=["POST"]),
            ]
        )
        if script:
            self.add(script)

    def add(self, entries: list[dict[str, Any]]) -> None:
        """Append script entries (JSON-able dicts) to the queue."""
        self._queue.extend(parse_script(entries, start=self._added))
        self._added += len(entries)

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def release(self) -> None:
        """End every stalled response (they close without their terminal event).

        Safe to call from any thread.
        """
        self._released = True
        event, loop = self._release_event, self._loop
        if event is None or loop is None or loop.is_closed():
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    async def _wait_released(self) -> None:
        if self._release_event is None:
            self._release_event = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            if self._released:
                self._release_event.set()
        await self._release_event.wait()

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def _take(self, endpoint: str, stream: bool, body: dict[str, Any]) -> Reply:
        user_text = last_user_text(body)
        for position, reply in enumerate(self._queue):
            if reply.fits(endpoint, stream, user_text):
                return self._queue.pop(position)
        return default_reply()

    # ---- endpoints ---------------------------------------------------------------------------

    async def _openai(self, request: Request) -> Response:
        return await self._answer(request, OPENAI)

    async def _anthropic(self, request: Request) -> Response:
        return await self._answer(request, ANTHROPIC)

    async def _add_script(self, request: Request) -> Response:
        entries = await request.json()
        if not isinstance(entries, list):
            return JSONResponse({"message": "a script is a JSON list"}, status_code=400)
        self.add(entries)
        return JSONResponse({"remaining": self.remaining})

    async def _clear_script(self, request: Request) -> Response:
        dropped = len(self._queue)
        self._queue.clear()
        return JSONResponse({"dropped": dropped})

    async def _open_gate(self, request: Request) -> Response:
        self.gates.open(request.path_params["name"])
        return Response(status_code=204)

    async def _list_requests(self, request: Request) -> Response:
        return JSONResponse([{"endpoint": r.endpoint, "body": r.body} for r in self.requests])

    async def _answer(self, request: Request, endpoint: str) -> Response:
        body = json.loads(await request.body())
        self.requests.append(RecordedRequest(endpoint, body, dict(request.headers)))
        wire = _WIRES[endpoint]
        if self.api_keys and _presented_key(request) not in self.api_keys:
            return JSONResponse(wire.error_body(HttpFault(status=401)), status_code=401)
        stream = bool(body.get("stream"))
        reply = self._take(endpoint, stream, body)
        model = str(body.get("model", "fake-model"))
        reply_id = wire.id_prefix + uuid.uuid4().hex[:24]
        if reply.wait_for is not None and not await self._hold(
            request, self.gates.wait(reply.wait_for)
        ):
            return Response(status_code=499)
        if reply.defer:  # the reply is whatever fits once the gate is open
            reply = self._take(endpoint, stream, body)
        if reply.stall_after == 0:
            await self._hold(request)
            return Response(status_code=499)
        if reply.error is not None:
            headers = {}
            if reply.error.retry_after is not None:
                headers["retry-after"] = f"{reply.error.retry_after:g}"
            error = wire.error_body(reply.error)
            return JSONResponse(error, status_code=reply.error.status, headers=headers)
        if not stream:
            return JSONResponse(wire.complete(reply, model, reply_id))
        frames = wire.stream_frames(reply, model, reply_id)
        return StreamingResponse(
            self._send(reply, wire, frames),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    async def _hold(self, request: Request, until: Awaitable[None] | None = None) -> bool:
        """Wait until ``until`` is done (True), or the client goes away or the fake is
        released (False). Without ``until``: until one of the last two."""
        done = False
        async with anyio.create_task_group() as group:

            async def until_disconnect() -> None:
                while (await request.receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            async def until_released() -> None:
                await self._wait_released()
                group.cancel_scope.cancel()

            group.start_soon(until_disconnect)
            group.start_soon(until_released)
            if until is not None:
                await until
                done = True
            else:
                await anyio.sleep_forever()
            group.cancel_scope.cancel()
        return done

    async def _send(self, reply: Reply, wire: _Wire, frames: Iterator[Frame]) -> AsyncIterator[str]:
        sent = 0
        ending = False
        pause = 1 / reply.tokens_per_second if reply.tokens_per_second else 0.0
        for kind, frame in frames:  # lazily: a stamp is taken as its frame is sent
            if kind == DELTA or (kind == END and not ending):
                ending = kind == END
                fault = reply.stream_error
                if fault is not None and _due(fault.after, sent, ending):
                    yield wire.stream_error_frame(fault)
                    return
                if _due(reply.truncate_after, sent, ending):
                    return
                if _due(reply.stall_after, sent, ending):
                    await self._wait_released()
                    return
            yield frame
            if kind == DELTA:
                sent += 1
                if pause:
                    await anyio.sleep(pause)


def _presented_key(request: Request) -> str | None:
    """The key a call carries: ``x-api-key`` or a bearer token (SDKs of both send either)."""
    if "x-api-key" in request.headers:
        return request.headers["x-api-key"]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def _due(after: int | None, sent: int, ending: bool) -> bool:
    """A fault fires after ``after`` deltas, or before the end when there are fewer."""
    return after is not None and (ending or sent >= after)


def create_app(
    script: list[dict[str, Any]] | None = None, *, api_keys: Collection[str] = ()
) -> Starlette:
    """A fake provider app with ``script`` (its :class:`FakeProvider` is ``app.state.fake``)."""
    fake = FakeProvider(script, api_keys=api_keys)
    fake.app.state.fake = fake
    return fake.app
