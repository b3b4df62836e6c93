"""Anthropic messages as a :class:`ModelClient`.

History is sent with the system prompts in ``system``, consecutive same-role turns merged
(tool results travel in user turns), reasoning replayed as ``thinking`` blocks with their
signatures, and ``cache_control: ephemeral`` on the last system block and the last two
messages (engine-behaviour §5.5, §9.5). A stream without ``message_stop`` is an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
from anthropic.types import RawMessageStreamEvent

from chatd.llm.convert import (
    args_object,
    base64_data,
    file_as_text,
    file_kind,
    normalize_args,
    sanitize_tool_call_id,
    sdk_arguments,
    tool_result_text,
)
from chatd.llm.errors import StreamClosedEarly, classify
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
    tools: dict[int, ToolCallDelta] = field(default_factory=dict)
    args: dict[int, str] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    response_id: str | None = None
    reason: str | None = None
    done: bool = False

    def parts(self, event: RawMessageStreamEvent) -> list[StreamPart]:
        if event.type == "message_start":
            self.response_id = event.message.id
            self.usage = _usage(event.message.usage, self.usage)
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                call = ToolCallDelta(
                    id=sanitize_tool_call_id(block.id), name=block.name, args_delta=""
                )
                self.tools[event.index] = call
                self.args[event.index] = ""
        elif event.type == "content_block_delta":
            return self._delta(event.index, event.delta)
        elif event.type == "content_block_stop":
            if event.index in self.tools:
                call = self.tools.pop(event.index)
                args = normalize_args(self.args.pop(event.index))
                return [ToolCall(id=call.id, name=call.name, args_json=args)]
        elif event.type == "message_delta":
            self.reason = event.delta.stop_reason or self.reason
            self.usage = _usage(event.usage, self.usage)
        elif event.type == "message_stop":
            self.done = True
            return [Finish(stop_reason(self.reason), self.usage, self.response_id)]
        return []

    def _delta(self, index: int, delta: Any) -> list[StreamPart]:
        if delta.type == "text_delta":
            return [TextDelta(text=delta.text)]
        if delta.type == "thinking_delta":
            return [ReasoningDelta(text=delta.thinking)]
        if delta.type == "signature_delta":
            return [ReasoningDelta(text="", signature=delta.signature)]
        if delta.type == "input_json_delta" and index in self.tools:
            self.args[index] += delta.partial_json
            call = self.tools[index]
            return [ToolCallDelta(id=call.id, name=call.name, args_delta=delta.partial_json)]
        if delta.type == "citations_delta" and delta.citation.type == "web_search_result_location":
            citation = delta.citation
            return [Source(id=citation.url, url=citation.url, title=citation.title)]
        return []


def _usage(raw: Any, previous: Usage) -> Usage:
    """Merge a usage report (message_start or the cumulative message_delta)."""
    input_tokens = raw.input_tokens if raw.input_tokens is not None else previous.input_tokens
    output_tokens = raw.output_tokens or previous.output_tokens
    cache_read = raw.cache_read_input_tokens
    cache_creation = raw.cache_creation_input_tokens
    details = raw.output_tokens_details
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=details.thinking_tokens if details else previous.reasoning_tokens,
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
        # Fields the SDK has no keyword for travel in extra_body.
        extra_body: dict[str, Any] = {}
        if opts.top_k is not None:
            extra_body["top_k"] = opts.top_k
        extra = opts.provider_options.get("anthropic")
        if isinstance(extra, dict):
            extra_body.update(extra)
        if extra_body:
            body["extra_body"] = extra_body
        if request.allow_tools and request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        state = _StreamState()
        try:
            args = sdk_arguments(self._body(request), ("model", "max_tokens"))
            events = await self._client.messages.create(**args, stream=True)
            async for event in events:
                for part in state.parts(event):
                    yield part
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
            args = sdk_arguments(self._body(request), ("model", "max_tokens"))
            message = await self._client.messages.create(**args)
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc
        text = "".join(block.text for block in message.content if block.type == "text")
        return Generated(text=text, usage=_usage(message.usage, Usage()))
