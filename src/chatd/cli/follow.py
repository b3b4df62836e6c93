"""Following a chat's turn in the terminal, over ``/chats/{chat}/stream``.

Text deltas are printed as they arrive (the line ends when the step's message is stored),
reasoning dimmed, tool calls and results on lines of their own, retries and errors as notes.
Following ends when the chat reaches a final status (waiting, error, requires_action) after
having been busy. If the turn already finished before the socket opened, the snapshot's stored
messages (those after ``after_id``) are printed instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx2
from httpx2.websockets import WebSocketDisconnect
from rich.console import Console

from chatd.cli.session import Session
from chatd.sdk.chats import ChatMessage, ChatMessagePart, ChatMessagePartType, ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType

BUSY = frozenset({ChatStatus.pending, ChatStatus.running})
FINAL = frozenset({ChatStatus.waiting, ChatStatus.error, ChatStatus.requires_action})
MAX_RESULT_CHARS = 400
MAX_FRAME_BYTES = 64 * 1024 * 1024


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + "…"


@dataclass
class Renderer:
    console: Console
    mid_line: bool = False
    busy: bool = False
    final: ChatStatus | None = None

    def _delta(self, text: str, style: str | None = None) -> None:
        self.console.print(text, end="", style=style, markup=False, highlight=False)
        self.mid_line = True

    def line(self, text: str, style: str | None = None) -> None:
        self.end_line()
        self.console.print(text, style=style, markup=False, highlight=False)

    def end_line(self) -> None:
        if self.mid_line:
            self.console.print()
            self.mid_line = False

    def part(self, part: ChatMessagePart) -> None:
        if part.type == ChatMessagePartType.text and part.text:
            self._delta(part.text)
        elif part.type == ChatMessagePartType.reasoning and part.text:
            self._delta(part.text, style="dim")
        elif part.type == ChatMessagePartType.tool_call and part.args is not None:
            self.line(f"→ {part.tool_name}({_short(part.args)})", style="cyan")
        elif part.type == ChatMessagePartType.tool_result:
            mark = "✗" if part.is_error else "←"
            self.line(f"{mark} {part.tool_name}: {_short(part.result)}", style="cyan")

    def stored(self, message: ChatMessage) -> None:
        """A persisted message the live parts did not show (the turn ended before we came)."""
        if message.role not in ("assistant", "tool"):
            return
        for part in message.content or []:
            self.part(part)
        self.end_line()

    def event(self, event: ChatStreamEvent, *, replay: bool) -> None:
        """One event; during a replay of a finished turn stored messages are printed."""
        if event.type == ChatStreamEventType.message_part and event.message_part:
            self.part(event.message_part.part)
        elif event.type == ChatStreamEventType.message and event.message:
            if replay:
                self.stored(event.message)
            elif event.message.role == "assistant":
                self.end_line()  # a step ended
        elif event.type == ChatStreamEventType.retry and event.retry:
            retry = event.retry
            self.line(
                f"retrying in {retry.delay_ms / 1000:g}s (attempt {retry.attempt}): {retry.error}",
                style="yellow",
            )
        elif event.type == ChatStreamEventType.error and event.error:
            detail = f" ({event.error.detail})" if event.error.detail else ""
            self.line(f"error: {event.error.message}{detail}", style="red")
        elif event.type == ChatStreamEventType.action_required and event.action_required:
            for call in event.action_required.tool_calls:
                self.line(f"action required: {call.tool_name}({call.args}) [{call.tool_call_id}]")
        elif event.type == ChatStreamEventType.status and event.status:
            status = event.status.status
            if status in BUSY:
                self.busy = True
            elif status in FINAL and (self.busy or replay):
                self.final = status


def follow(session: Session, chat_id: str, after_id: int, console: Console) -> ChatStatus:
    """Print the chat's turn until it settles; returns the final status."""
    renderer = Renderer(console)
    with (
        httpx2.Client(base_url=session.url, timeout=30) as http,
        http.websocket(
            f"/api/experimental/chats/{chat_id}/stream",
            params={"after_id": after_id},
            headers={"Coder-Session-Token": session.token},
            max_message_size_bytes=MAX_FRAME_BYTES,
        ) as ws,
    ):
        snapshot = [ChatStreamEvent.model_validate(e) for e in ws.receive_json()]
        first = snapshot[0].status.status if snapshot and snapshot[0].status else None
        replay = first in FINAL
        for event in snapshot:
            renderer.event(event, replay=replay)
        try:
            while renderer.final is None:
                for raw in ws.receive_json():
                    renderer.event(ChatStreamEvent.model_validate(raw), replay=False)
        except WebSocketDisconnect as closed:
            renderer.line(f"stream closed: {closed.code} {closed.reason}", style="red")
            return ChatStatus.error
    renderer.end_line()
    return renderer.final
