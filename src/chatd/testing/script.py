"""Scripts for the fake providers: what each model call answers.

A script is a JSON list; each entry answers one model call (both endpoints share one queue).
Keys of an entry, all optional:

``match``            ``{"endpoint": "openai"|"anthropic", "stream": true|false, "user": "..."}``:
                     the entry answers only calls that fit (the first fitting entry is taken;
                     others wait); ``user`` is a text the call's last user message with text
                     must contain (so concurrent chats each get their own replies).
``text``             reply text; a string is cut into ``chunk_chars``-sized deltas (default 8),
                     a list is sent as those deltas.
``reasoning``        reasoning text (same chunking); ``signature`` its signature (Anthropic).
``tool_calls``       ``[{"name", "args": {...} | "args_json": "...", "id"?, "chunks"?: 3}]``:
                     the argument text is streamed in ``chunks`` pieces; calls are parallel.
``omit_index``       OpenAI tool-call fragments without ``index`` (as Ollama sends them).
``omit_id``          ... and without ``id``.
``usage``            ``{"input_tokens", "output_tokens", "cache_read_tokens",
                     "cache_creation_tokens", "reasoning_tokens"}``.
``finish_reason``    ``stop|tool-calls|length|content-filter`` (default: ``tool-calls`` when there
                     are tool calls, else ``stop``).
``tokens_per_second`` pace of the deltas (default: as fast as possible).
``stamp_deltas``     prefix each text delta with ``[[t=<time.time_ns()>]]`` (see :func:`stamps`).
Faults:
``error``            an HTTP error instead of a reply: ``{"status", "type"?, "code"?, "message"?,
                     "body"?, "retry_after"?}`` (``body`` replaces the provider-style body).
``stream_error``     an error inside a 200 stream after ``after`` deltas:
                     ``{"after": 0, "type": "overloaded_error", "message": "Overloaded"}``.
``truncate_after``   end the stream after this many deltas, before the terminal event.
``stall_after``      stop sending after this many deltas until the client gives up
                     (``0``: not even the response headers are sent).
Gates:
``wait_for``         a gate's name: the reply waits, before anything is sent, until the gate
                     is opened (``POST /fake/gates/<name>``) or the client gives up.
``defer``            with ``wait_for``: the entry only holds the call; once the gate is open,
                     the call is answered by the next entry that fits then (a test scripts
                     it after learning what it must say, such as a chat id).

When no entry fits, the call gets :data:`DEFAULT_TEXT` (usage 10 in / 5 out).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "This is the fake provider's default reply."
STAMP = re.compile(r"\[\[t=(\d+)\]\]")


def stamps(text: str) -> list[int]:
    """The ``time.time_ns()`` stamps found in ``text`` (from ``stamp_deltas`` replies)."""
    return [int(m) for m in STAMP.findall(text)]


def _chunks(value: str | list[str] | None, size: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [value[i : i + size] for i in range(0, len(value), size)] if value else []


def split_evenly(text: str, pieces: int) -> list[str]:
    pieces = max(1, min(pieces, len(text) or 1))
    step = -(-len(text) // pieces) if text else 1
    return [text[i : i + step] for i in range(0, len(text), step)] or [""]


@dataclass(frozen=True)
class ScriptToolCall:
    id: str
    name: str
    args_json: str
    chunks: list[str]


@dataclass(frozen=True)
class ScriptUsage:
    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class HttpFault:
    status: int
    type: str | None = None
    code: str | None = None
    message: str | None = None
    body: Any = None
    retry_after: float | None = None


@dataclass(frozen=True)
class StreamFault:
    after: int = 0
    type: str = "overloaded_error"
    message: str = "Overloaded"


@dataclass(frozen=True)
class Reply:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    signature: str | None = None
    tool_calls: list[ScriptToolCall] = field(default_factory=list)
    omit_index: bool = False
    omit_id: bool = False
    usage: ScriptUsage = field(default_factory=ScriptUsage)
    finish_reason: str = "stop"
    tokens_per_second: float | None = None
    stamp_deltas: bool = False
    match_endpoint: str | None = None
    match_stream: bool | None = None
    match_user: str | None = None
    error: HttpFault | None = None
    stream_error: StreamFault | None = None
    truncate_after: int | None = None
    stall_after: int | None = None
    wait_for: str | None = None
    defer: bool = False

    def fits(self, endpoint: str, stream: bool, user_text: str = "") -> bool:
        return (
            self.match_endpoint in (None, endpoint)
            and self.match_stream in (None, stream)
            and (self.match_user is None or self.match_user in user_text)
        )

    @property
    def full_text(self) -> str:
        return "".join(self.text)

    @property
    def delta_count(self) -> int:
        return len(self.text) + len(self.reasoning) + sum(len(c.chunks) for c in self.tool_calls)


def _tool_call(raw: dict[str, Any], position: int) -> ScriptToolCall:
    if "args_json" in raw:
        args_json = str(raw["args_json"])
    else:
        args_json = json.dumps(raw.get("args", {}), separators=(",", ":"))
    return ScriptToolCall(
        id=str(raw.get("id") or f"call_fake{position:04d}"),
        name=str(raw["name"]),
        args_json=args_json,
        chunks=split_evenly(args_json, int(raw.get("chunks", 3))),
    )


def parse_entry(raw: dict[str, Any], position: int = 0) -> Reply:
    size = int(raw.get("chunk_chars", 8))
    calls = [_tool_call(c, position * 100 + i) for i, c in enumerate(raw.get("tool_calls", []))]
    match = raw.get("match", {})
    error = raw.get("error")
    stream_error = raw.get("stream_error")
    tps = raw.get("tokens_per_second")
    return Reply(
        text=_chunks(raw.get("text"), size),
        reasoning=_chunks(raw.get("reasoning"), size),
        signature=raw.get("signature"),
        tool_calls=calls,
        omit_index=bool(raw.get("omit_index", False)),
        omit_id=bool(raw.get("omit_id", False)),
        usage=ScriptUsage(**raw.get("usage", {})),
        finish_reason=str(raw.get("finish_reason") or ("tool-calls" if calls else "stop")),
        tokens_per_second=float(tps) if tps else None,
        stamp_deltas=bool(raw.get("stamp_deltas", False)),
        match_endpoint=match.get("endpoint"),
        match_stream=match.get("stream"),
        match_user=match.get("user"),
        error=HttpFault(**error) if error else None,
        stream_error=StreamFault(**stream_error) if stream_error is not None else None,
        truncate_after=raw.get("truncate_after"),
        stall_after=raw.get("stall_after"),
        wait_for=str(raw["wait_for"]) if raw.get("wait_for") else None,
        defer=bool(raw.get("defer", False)),
    )


def parse_script(entries: list[dict[str, Any]], start: int = 0) -> list[Reply]:
    """Entries numbered from ``start`` (default tool-call ids stay unique when appending)."""
    return [parse_entry(e, start + i) for i, e in enumerate(entries)]


def default_reply() -> Reply:
    return parse_entry({"text": DEFAULT_TEXT})


def last_user_text(body: dict[str, Any]) -> str:
    """The text of a request's last user message that has text (either wire's shape)."""
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            text = content
        else:
            parts = content if isinstance(content, list) else []
            text = "".join(
                str(p.get("text") or "")
                for p in parts
                if isinstance(p, dict) and p.get("type") == "text"
            )
        if text:
            return text
    return ""
