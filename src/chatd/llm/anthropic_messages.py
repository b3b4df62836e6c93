"""Anthropic messages as a :class:`ModelClient`.

History is sent with the system prompts in ``system``, consecutive same-role turns merged
(tool results travel in user turns), reasoning replayed as ``thinking`` blocks with their
signatures, and ``cache_control: ephemeral`` on the last system block and the last two
messages (engine-behaviour §5.5, §9.5). A stream without ``message_stop`` is an error.

As for OpenAI (:mod:`chatd.llm.openai_chat`), requests go through the SDK client's low-level
``post`` and we read the streamed body ourselves, each SSE event parsed into a plain dict rather
than an SDK model per event; an in-stream ``error`` event is raised as the SDK raises it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2

from chatd.llm.convert import (
    args_object,
    args_problem,
    base64_data,
    file_as_text,
    file_kind,
    normalize_args,
    response_object,
    sanitize_tool_call_id,
    tool_result_text,
)
from chatd.llm.errors import InStreamError, StreamClosedEarly, classify
from chatd.llm.sse import SSEDecoder, event_json
from chatd.llm.types import (
    AssistantMessage,
    FileContent,
    Finish,
    Generated,
    Message,
    ModelRequest,
    ProviderError,
    ReasoningContent,
    ReasoningDelta,
    Source,
    StreamPart,
    SystemMessage,
    TextContent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
)

MESSAGES_PATH = "/v1/messages"
_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "tool_use": "tool-calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content-filter",
}
_EPHEMERAL = {"type": "ephemeral"}


def stop_reason(raw: str | None) -> str:
    return _STOP_REASONS.get(raw or "", "other")


# ---- request ---------------------------------------------------------------------------------


def _user_blocks(parts: list[TextContent | FileContent]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextContent):
            if part.text.strip():
                blocks.append({"type": "text", "text": part.text})
            continue
        kind = file_kind(part)
        if kind == "text":
            blocks.append({"type": "text", "text": file_as_text(part)})
            continue
        source = {"type": "base64", "media_type": part.media_type, "data": base64_data(part)}
        blocks.append({"type": "image" if kind == "image" else "document", "source": source})
    return blocks


def _assistant_blocks(message: AssistantMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, ReasoningContent):
            # Thinking without a signature cannot be replayed; the API would reject it.
            if part.signature:
                blocks.append(
                    {"type": "thinking", "thinking": part.text, "signature": part.signature}
                )
        elif isinstance(part, TextContent):
            if part.text.strip():
                blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": sanitize_tool_call_id(part.id),
                    "name": part.name,
                    "input": args_object(normalize_args(part.args_json)),
                }
            )
    return blocks


def _tool_blocks(message: ToolMessage) -> list[dict[str, Any]]:
    return [
        {
            "type": "tool_result",
            "tool_use_id": sanitize_tool_call_id(r.tool_call_id),
            "content": tool_result_text(r.result),
            "is_error": r.is_error,
        }
        for r in message.results
    ]


def wire_request(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, messages)`` in the Anthropic shape, with prompt-caching marks."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "user"
        if isinstance(message, SystemMessage):
            if message.text.strip():
                system.append({"type": "text", "text": message.text})
            continue
        if isinstance(message, UserMessage):
            blocks = _user_blocks(message.content)
        elif isinstance(message, AssistantMessage):
            role, blocks = "assistant", _assistant_blocks(message)
        else:
            blocks = _tool_blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if system:
        system[-1]["cache_control"] = _EPHEMERAL
    for turn in turns[-2:]:
        turn["content"][-1]["cache_control"] = _EPHEMERAL
    return system, turns


# ---- stream ----------------------------------------------------------------------------------


@dataclass
class _StreamState:
    """The parts of one streamed reply, event by event (events are dicts off the wire)."""

    tools: dict[int, ToolCallDelta] = field(default_factory=dict)
    args: dict[int, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    response_id: str | None = None
    reason: str | None = None
    done: bool = False

    def parts(self, event: dict[str, Any]) -> list[StreamPart]:
        kind = event.get("type")
        if kind == "content_block_delta":  # the common case first
            return self._delta(event.get("index", 0), event.get("delta") or {})
        if kind == "message_start":
            message = event.get("message") or {}
            self.response_id = message.get("id")
            self.usage = _usage(message.get("usage") or {}, self.usage)
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                call_id = sanitize_tool_call_id(block.get("id"))
                call = ToolCallDelta(id=call_id, name=block.get("name") or "", args_delta="")
                self.tools[event.get("index", 0)] = call
                self.args[event.get("index", 0)] = ""
        elif kind == "content_block_stop":
            index = event.get("index", 0)
            if index in self.tools:
                call = self.tools.pop(index)
                raw = self.args.pop(index)
                args, problem = normalize_args(raw), args_problem(raw)
                return [ToolCall(id=call.id, name=call.name, args_json=args, args_error=problem)]
        elif kind == "message_delta":
            self.reason = (event.get("delta") or {}).get("stop_reason") or self.reason
            self.usage = _usage(event.get("usage") or {}, self.usage)
        elif kind == "message_stop":
            self.done = True
            return [Finish(stop_reason(self.reason), self.usage, self.response_id)]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[StreamPart]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(text=delta.get("text") or "")]
        if kind == "thinking_delta":
            return [ReasoningDelta(text=delta.get("thinking") or "")]
        if kind == "signature_delta":
            return [ReasoningDelta(text="", signature=delta.get("signature"))]
        if kind == "input_json_delta" and index in self.tools:
            fragment = delta.get("partial_json") or ""
            self.args[index] += fragment
            call = self.tools[index]
            return [ToolCallDelta(id=call.id, name=call.name, args_delta=fragment)]
        citation = delta.get("citation") or {}
        if kind == "citations_delta" and citation.get("type") == "web_search_result_location":
            url = citation.get("url") or ""
            return [Source(id=url, url=url, title=citation.get("title"))]
        return []


def _usage(raw: dict[str, Any], previous: Usage) -> Usage:
    """Merge a usage report (message_start or the cumulative message_delta)."""
    input_tokens = raw.get("input_tokens")
    if input_tokens is None:
        input_tokens = previous.input_tokens
    output_tokens = raw.get("output_tokens") or previous.output_tokens
    cache_read = raw.get("cache_read_input_tokens")
    cache_creation = raw.get("cache_creation_input_tokens")
    details = raw.get("output_tokens_details")
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=(
            details.get("thinking_tokens") or 0 if details else previous.reasoning_tokens
        ),
        cache_read_tokens=previous.cache_read_tokens if cache_read is None else cache_read,
        cache_creation_tokens=(
            previous.cache_creation_tokens if cache_creation is None else cache_creation
        ),
    )
    total = usage.input_tokens + usage.output_tokens
    total += usage.cache_read_tokens + usage.cache_creation_tokens
    return Usage(**{**usage.__dict__, "total_tokens": total})


# ---- the client ------------------------------------------------------------------------------


class AnthropicClient:
    provider = "anthropic"

    def __init__(
        self, *, model: str, client: anthropic.AsyncAnthropic, owns_pool: bool = True
    ) -> None:
        self.model = model
        self._client = client
        self._owns_pool = owns_pool

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        opts = request.options
        system, messages = wire_request(request.messages)
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "max_tokens": opts.max_output_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        for key, value in (("temperature", opts.temperature), ("top_p", opts.top_p)):
            if value is not None:
                body[key] = value
        if opts.top_k is not None:
            body["top_k"] = opts.top_k
        if request.allow_tools and request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        extra = opts.provider_options.get("anthropic")
        if isinstance(extra, dict):
            body.update(extra)  # the model config's provider options win
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        """The SDK sends the request (status errors are raised there); we read the body."""
        try:
            state = _StreamState()
            body = self._body(request)
            body["stream"] = True
            response = await self._client.post(
                MESSAGES_PATH, body=body, cast_to=httpx2.Response, stream=True
            )
            try:
                decoder = SSEDecoder()
                async for chunk in response.aiter_bytes():
                    for data in decoder.feed(chunk):
                        event = event_json(data)
                        if not isinstance(event, dict):
                            raise ValueError("the stream sent an event that is not a JSON object")
                        if event.get("type") == "error":
                            raise InStreamError(event)
                        for part in state.parts(event):
                            yield part
            finally:
                await response.aclose()
            if not state.done:
                raise StreamClosedEarly("anthropic stream closed before message_stop")
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc

    async def aclose(self) -> None:
        """Close the connection pool if this client owns it (a passed-in one is the caller's)."""
        if self._owns_pool:
            await self._client.close()

    async def generate(self, request: ModelRequest) -> Generated:
        try:
            body = self._body(request)
            response = await self._client.post(MESSAGES_PATH, body=body, cast_to=httpx2.Response)
            message = response_object(response)
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc
        blocks = message.get("content")
        text = "".join(
            block["text"]
            for block in (blocks if isinstance(blocks, list) else ())
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        usage = message.get("usage")
        return Generated(text=text, usage=_usage(usage if isinstance(usage, dict) else {}, Usage()))
