"""One model call's output as it streams: what to publish now, what to persist later.

:class:`StepBuilder` takes the normalised stream parts of one attempt (engine-behaviour §5.5),
returns the ``message_part`` to publish for each, and keeps the step's assistant content:
text and reasoning blocks (consecutive deltas joined), complete tool calls in the order they
completed, and, for an interrupted step, the calls whose arguments were still streaming.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatd.engine.prompt import args_object
from chatd.events.delivery import Delta
from chatd.llm.types import (
    Finish,
    ReasoningDelta,
    Source,
    StreamPart,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType

Clock = Callable[[], dt.datetime]
P = ChatMessagePartType


@dataclass
class _Block:
    kind: ChatMessagePartType  # text or reasoning
    started_at: dt.datetime
    text: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    completed_at: dt.datetime | None = None


@dataclass
class _Streaming:
    name: str
    args: list[str] = field(default_factory=list)


def parse_args(args_json: str) -> Any:
    """A tool call's arguments as JSON (``{}`` when they are not a JSON object)."""
    return json.loads(args_object(args_json))


class StepBuilder:
    def __init__(
        self, clock: Clock, mcp_server_of: Callable[[str], uuid.UUID | None] | None = None
    ) -> None:
        self.clock = clock
        # The MCP server a tool name belongs to (its tool-call parts name it), if any.
        self.mcp_server_of = mcp_server_of or (lambda _name: None)
        self._items: list[_Block | ChatMessagePart] = []
        self._streaming: dict[str, _Streaming] = {}
        self.calls: list[ToolCall] = []
        self.finish: Finish | None = None

    def add(self, part: StreamPart) -> ChatMessagePart | Delta | None:
        """Record one stream part; returns the ``message_part`` to publish (if any).

        A text or reasoning delta (one per streamed token, the hot path) is published as a
        :class:`Delta`: no part object is built for it.
        """
        if isinstance(part, TextDelta):
            self._block(P.text).text.append(part.text)
            return Delta(P.text, part.text)
        if isinstance(part, ReasoningDelta):
            block = self._block(P.reasoning)
            block.text.append(part.text)
            if part.signature:
                block.signature.append(part.signature)
            return Delta(P.reasoning, part.text)
        self._close_block()
        if isinstance(part, ToolCallDelta):
            self._streaming.setdefault(part.id, _Streaming(part.name)).args.append(part.args_delta)
            return ChatMessagePart(
                type=P.tool_call,
                tool_call_id=part.id,
                tool_name=part.name,
                mcp_server_config_id=self.mcp_server_of(part.name),
                args_delta=part.args_delta,
            )
        if isinstance(part, ToolCall):
            self._streaming.pop(part.id, None)
            self.calls.append(part)
            call_part = ChatMessagePart(
                type=P.tool_call,
                tool_call_id=part.id,
                tool_name=part.name,
                mcp_server_config_id=self.mcp_server_of(part.name),
                args=parse_args(part.args_json),
                created_at=self.clock(),
            )
            self._items.append(call_part)
            return call_part
        if isinstance(part, Source):
            return ChatMessagePart(type=P.source, source_id=part.id, url=part.url, title=part.title)
        self.finish = part
        return None

    def _block(self, kind: ChatMessagePartType) -> _Block:
        last = self._items[-1] if self._items else None
        if isinstance(last, _Block) and last.kind == kind and last.completed_at is None:
            return last
        self._close_block()
        block = _Block(kind=kind, started_at=self.clock())
        self._items.append(block)
        return block

    def _close_block(self) -> None:
        last = self._items[-1] if self._items else None
        if isinstance(last, _Block) and last.completed_at is None:
            last.completed_at = self.clock()

    def interrupted_calls(self) -> list[ToolCall]:
        """Calls whose arguments were still streaming, as calls (arguments so far, or ``{}``)."""
        return [
            ToolCall(call_id, s.name, args_object("".join(s.args)))
            for call_id, s in self._streaming.items()
        ]

    def assistant_parts(self, *, include_streaming: bool = False) -> list[ChatMessagePart]:
        """The step's assistant content; blank text and reasoning blocks are left out."""
        self._close_block()
        parts: list[ChatMessagePart] = []
        for item in self._items:
            if isinstance(item, ChatMessagePart):
                parts.append(item)
                continue
            text, signature = "".join(item.text), "".join(item.signature)
            if item.kind == P.text and text.strip():
                parts.append(ChatMessagePart(type=P.text, text=text))
            elif item.kind == P.reasoning and (text.strip() or signature):
                parts.append(
                    ChatMessagePart(
                        type=P.reasoning,
                        text=text,
                        signature=signature or None,
                        created_at=item.started_at,
                        completed_at=item.completed_at,
                    )
                )
        if include_streaming:
            now = self.clock()
            parts.extend(
                ChatMessagePart(
                    type=P.tool_call,
                    tool_call_id=call.id,
                    tool_name=call.name,
                    mcp_server_config_id=self.mcp_server_of(call.name),
                    args=parse_args(call.args_json),
                    created_at=now,
                )
                for call in self.interrupted_calls()
            )
        return parts
