"""OpenAI chat completions (and OpenAI-compatible servers) as a :class:`ModelClient`.

Streaming asks for usage in a final chunk (``stream_options.include_usage``). Reasoning text
from compatible servers arrives in ``reasoning_content`` or ``reasoning`` on the delta. A stream
that ends before any ``finish_reason`` was seen is an error (:class:`StreamClosedEarly`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage

from chatd.llm.convert import (
    data_url,
    file_as_text,
    file_kind,
    normalize_args,
    sanitize_tool_call_id,
    tool_result_text,
)
from chatd.llm.errors import StreamClosedEarly, classify
from chatd.llm.toolcalls import ToolCallAssembler
from chatd.llm.types import (
    AssistantMessage,
    FileContent,
    Finish,
    Generated,
    Message,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    StreamPart,
    SystemMessage,
    TextContent,
    TextDelta,
    ToolCallContent,
    ToolMessage,
    Usage,
    UserMessage,
)

_FINISH_REASONS = {
    "stop": "stop",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "length": "length",
    "content_filter": "content-filter",
}


def finish_reason(raw: str | None, has_tool_calls: bool) -> str:
    reason = _FINISH_REASONS.get(raw or "", "other")
    # Some compatible servers (older Ollama) say "stop" after emitting tool calls.
    if has_tool_calls and reason == "stop":
        return "tool-calls"
    return reason


def usage_from(raw: CompletionUsage | None) -> Usage:
    """Normalised usage: ``input_tokens`` excludes cache reads, as Anthropic counts them."""
    if raw is None:
        return Usage()
    cached = raw.prompt_tokens_details.cached_tokens if raw.prompt_tokens_details else None
    reasoning = (
        raw.completion_tokens_details.reasoning_tokens if raw.completion_tokens_details else None
    )
    cache_read = cached or 0
    return Usage(
        input_tokens=max(raw.prompt_tokens - cache_read, 0),
        output_tokens=raw.completion_tokens,
        total_tokens=raw.total_tokens,
        reasoning_tokens=reasoning or 0,
        cache_read_tokens=cache_read,
    )


# ---- request ---------------------------------------------------------------------------------


def _user_content(parts: list[TextContent | FileContent]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, TextContent) for p in parts):
        return "\n\n".join(p.text for p in parts if isinstance(p, TextContent))
    content: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, TextContent):
            content.append({"type": "text", "text": part.text})
        elif file_kind(part) == "image":
            content.append({"type": "image_url", "image_url": {"url": data_url(part)}})
        elif file_kind(part) == "pdf":
            file = {"filename": part.name or "document.pdf", "file_data": data_url(part)}
            content.append({"type": "file", "file": file})
        else:
            content.append({"type": "text", "text": file_as_text(part)})
    return content


def _assistant(message: AssistantMessage) -> dict[str, Any] | None:
    text = "".join(p.text for p in message.content if isinstance(p, TextContent))
    calls = [
        {
            "id": sanitize_tool_call_id(p.id),
            "type": "function",
            "function": {"name": p.name, "arguments": normalize_args(p.args_json)},
        }
        for p in message.content
        if isinstance(p, ToolCallContent)
    ]
    # Chat completions takes no reasoning back: only text and calls are replayed.
    if not text and not calls:
        return None
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        out["tool_calls"] = calls
    return out


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": message.text})
        elif isinstance(message, UserMessage):
            out.append({"role": "user", "content": _user_content(message.content)})
        elif isinstance(message, AssistantMessage):
            assistant = _assistant(message)
            if assistant is not None:
                out.append(assistant)
        elif isinstance(message, ToolMessage):
            for result in message.results:
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": sanitize_tool_call_id(result.tool_call_id),
                        "content": tool_result_text(result.result),
                    }
                )
    return out


# ---- the client ------------------------------------------------------------------------------


class OpenAIChatClient:
    """One model behind the chat completions API (``provider`` is openai or openai-compat)."""

    def __init__(
        self, *, provider: str, model: str, client: openai.AsyncOpenAI, owns_pool: bool = True
    ) -> None:
        self.provider = provider
        self.model = model
        self._client = client
        self._owns_pool = owns_pool

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        opts = request.options
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": wire_messages(request.messages),
        }
        # Compatible servers know max_tokens; OpenAI itself wants max_completion_tokens.
        limit_key = "max_completion_tokens" if self.provider == "openai" else "max_tokens"
        body[limit_key] = opts.max_output_tokens
        for key, value in (
            ("temperature", opts.temperature),
            ("top_p", opts.top_p),
            ("presence_penalty", opts.presence_penalty),
            ("frequency_penalty", opts.frequency_penalty),
        ):
            if value is not None:
                body[key] = value
        if request.allow_tools and request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
        extra = opts.provider_options.get(self.provider, opts.provider_options.get("openai"))
        if isinstance(extra, dict):
            body["extra_body"] = extra  # fields the SDK has no keyword for
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        try:
            async for part in self._stream(request):
                yield part
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc

    async def _stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        body = self._body(request)
        chunks = await self._client.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}
        )
        calls = ToolCallAssembler()
        reason: str | None = None
        usage: CompletionUsage | None = None
        response_id: str | None = None
        async for chunk in chunks:
            response_id = response_id or chunk.id or None
            usage = chunk.usage or usage
            for choice in chunk.choices[:1]:
                for part in _delta_parts(chunk, calls):
                    yield part
                if choice.finish_reason and reason is None:
                    reason = choice.finish_reason
                    for call in calls.complete():
                        yield call
        if reason is None:
            raise StreamClosedEarly("openai stream closed before terminal event")
        yield Finish(
            finish_reason=finish_reason(reason, bool(calls)),
            usage=usage_from(usage),
            provider_response_id=response_id,
        )

    async def aclose(self) -> None:
        """Close the connection pool if this client owns it (a passed-in one is the caller's)."""
        if self._owns_pool:
            await self._client.close()

    async def generate(self, request: ModelRequest) -> Generated:
        try:
            completion = await self._client.chat.completions.create(**self._body(request))
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc
        text = completion.choices[0].message.content if completion.choices else None
        return Generated(text=text or "", usage=usage_from(completion.usage))


def _extra(model: Any, name: str) -> Any:
    extra = getattr(model, "model_extra", None) or {}
    return extra.get(name)


def _delta_parts(chunk: ChatCompletionChunk, calls: ToolCallAssembler) -> list[StreamPart]:
    delta = chunk.choices[0].delta
    parts: list[StreamPart] = []
    reasoning = _extra(delta, "reasoning_content") or _extra(delta, "reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ReasoningDelta(text=reasoning))
    if delta.content:
        parts.append(TextDelta(text=delta.content))
    for fragment in delta.tool_calls or []:
        function = fragment.function
        parts.append(
            calls.feed(
                getattr(fragment, "index", None),
                fragment.id,
                function.name if function else None,
                function.arguments if function else None,
            )
        )
    return parts
