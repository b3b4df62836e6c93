"""Following a real server's stream and watch WebSockets, and rendering events compactly.

:class:`Socket` wraps one httpx2 WebSocket session: it collects what the server sends (each
stream frame is a JSON array of events, each watch frame one event) into a flat list and
waits, bounded, until a predicate over that list holds. :func:`render` turns events into
short labels so a test asserts a whole sequence in one readable line, e.g.
``S(running) P(assistant:text) M(assistant) S(waiting)``:

``S(status)``                  status             ``M(role)``        message
``P(role:type)``               message_part (runs of the same label collapse into one)
``P(assistant:tool-call Δ)``   a streamed argument fragment of a call
``P(assistant:tool-call id)``  a complete call;   ``P(tool:tool-result id)`` its result
``Q[text, …]``                 queue_update       ``R(attempt:kind)`` retry
``E(kind)``                    error              ``A(tool, …)``     action_required
``W(kind)`` / ``W(status_change:status)``         a watch event
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
from httpx2.websockets import WebSocketSession

Event = dict[str, Any]
Predicate = Callable[[list[Event]], bool]
WAIT = 30.0
MAX_FRAME_BYTES = 16 * 1024 * 1024
FINAL = ("waiting", "error", "requires_action")


class Socket:
    def __init__(self, ws: WebSocketSession, *, arrays: bool) -> None:
        self.ws = ws
        self.arrays = arrays
        self.events: list[Event] = []

    def frame(self, timeout: float) -> list[Event]:
        """The next frame's events (appended to :attr:`events`)."""
        raw = self.ws.receive_json(timeout=timeout)
        received = list(raw) if self.arrays else [raw]
        self.events.extend(received)
        return received

    def until(self, done: Predicate, timeout: float = WAIT) -> list[Event]:
        """Collect until ``done(events)`` holds; fail after ``timeout`` seconds with the events."""
        deadline = time.monotonic() + timeout
        while not done(self.events):
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                self.frame(left)
            except TimeoutError:
                raise AssertionError(f"timed out; so far: {render(self.events)}") from None
        return self.events

    def take(self, done: Predicate, timeout: float = WAIT) -> list[Event]:
        """Like :meth:`until`, then forget the events (the next wait starts afresh)."""
        events = self.until(done, timeout)
        self.events = []
        return events


@contextmanager
def connect(server_url: str, path: str, token: str, *, arrays: bool) -> Iterator[Socket]:
    with (
        httpx2.Client(base_url=server_url, timeout=10) as http,
        http.websocket(
            path,
            headers={"Coder-Session-Token": token},
            max_message_size_bytes=MAX_FRAME_BYTES,
            keepalive_ping_interval_seconds=None,
        ) as ws,
    ):
        yield Socket(ws, arrays=arrays)


@contextmanager
def stream(server_url: str, token: str, chat_id: str) -> Iterator[Socket]:
    """The chat's stream, its snapshot already read and dropped (``socket.events`` is empty)."""
    with connect(
        server_url, f"/api/experimental/chats/{chat_id}/stream", token, arrays=True
    ) as socket:
        socket.frame(WAIT)  # a small chat's snapshot is one frame
        socket.events = []
        yield socket


@contextmanager
def watch(server_url: str, token: str) -> Iterator[Socket]:
    with connect(server_url, "/api/experimental/chats/watch", token, arrays=False) as socket:
        yield socket


# ---- predicates ------------------------------------------------------------------------------


def statuses(events: list[Event]) -> list[str]:
    return [e["status"]["status"] for e in events if e.get("type") == "status"]


def settled(events: list[Event], *, turns: int = 1, final: tuple[str, ...] = FINAL) -> bool:
    """``turns`` turns ran (``running``) and the last ended in one of ``final``."""
    seen = statuses(events)
    return seen.count("running") >= turns and seen[-1] in final


def settles(turns: int = 1, final: tuple[str, ...] = FINAL) -> Predicate:
    return lambda events: settled(events, turns=turns, final=final)


def has(label: str) -> Predicate:
    """The rendered events contain ``label`` (e.g. ``"P(assistant:text)"``)."""
    return lambda events: label in labels(events)


def watched(kind: str, chat_id: str, status: str | None = None) -> Predicate:
    def done(events: list[Event]) -> bool:
        return any(
            e["kind"] == kind
            and e["chat"]["id"] == chat_id
            and (status is None or e["chat"]["status"] == status)
            for e in events
        )

    return done


# ---- rendering -------------------------------------------------------------------------------


def label(event: Event) -> str:
    if "kind" in event and "type" not in event:  # a watch event
        kind = event["kind"]
        return f"W({kind}:{event['chat']['status']})" if kind == "status_change" else f"W({kind})"
    kind = event["type"]
    if kind == "status":
        return f"S({event['status']['status']})"
    if kind == "message":
        return f"M({event['message']['role']})"
    if kind == "message_part":
        return _part_label(event["message_part"])
    if kind == "queue_update":
        texts = [_text(q["content"]) for q in event.get("queued_messages") or []]
        return f"Q[{', '.join(texts)}]"
    if kind == "retry":
        return f"R({event['retry']['attempt']}:{event['retry']['kind']})"
    if kind == "error":
        return f"E({event['error']['kind']})"
    if kind == "action_required":
        calls = event["action_required"]["tool_calls"]
        return f"A({', '.join(c['tool_name'] for c in calls)})"
    return str(kind)


def _part_label(message_part: Event) -> str:
    role, part = message_part["role"], message_part["part"]
    kind = part["type"]
    if kind == "tool-call":
        return f"P({role}:{kind} {'Δ' if part.get('args_delta') else part['tool_call_id']})"
    if kind == "tool-result":
        return f"P({role}:{kind} {part['tool_call_id']})"
    return f"P({role}:{kind})"


def _text(content: list[Event] | None) -> str:
    return "".join(p.get("text") or "" for p in content or [])


def labels(events: list[Event]) -> list[str]:
    """Labels in order; a run of identical ``P(…)`` labels becomes one."""
    out: list[str] = []
    for event in events:
        current = label(event)
        if not (current.startswith("P(") and out and out[-1] == current):
            out.append(current)
    return out


def render(events: list[Event]) -> str:
    return " ".join(labels(events))


def parts(events: list[Event], kind: str) -> list[Event]:
    """The ``part`` of every message_part of type ``kind``."""
    return [
        e["message_part"]["part"]
        for e in events
        if e.get("type") == "message_part" and e["message_part"]["part"]["type"] == kind
    ]


def text_of(events: list[Event]) -> str:
    """The streamed assistant text, joined."""
    return "".join(p.get("text") or "" for p in parts(events, "text"))
