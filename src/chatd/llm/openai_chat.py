"""OpenAI chat completions (and OpenAI-compatible servers) as a :class:`ModelClient`.

Streaming asks for usage in a final chunk (``stream_options.include_usage``). Reasoning text
from compatible servers arrives in ``reasoning_content`` or ``reasoning`` on the delta. A stream
that ends before any ``finish_reason`` was seen is an error (:class:`StreamClosedEarly`).

Requests go through the SDK client's low-level ``post`` with the body already in wire form: the
SDK adds auth and headers, applies timeouts and raises its status errors, but skips what its
typed methods add per call (a recursive, annotation-driven transform of the arguments, ~25 ms of
CPU for a 150-message history, and pydantic models built from the reply: ~0.2 ms even for a
short call). We read the streamed body ourselves: the SDK's iterator builds a pydantic model per
chunk, which cost more than half of the event loop at a hundred streaming chats; each SSE event
is parsed into a plain dict. Failures are raised as the SDK would raise them (``APIError`` for
an in-stream ``error`` object, ``APITimeoutError`` / ``APIConnectionError`` for a read that
fails), so :func:`~chatd.llm.errors.classify` sees the same exceptions as before.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx2
import openai

from chatd.llm.convert import (
    data_url,
    file_as_text,
    file_kind,
    normalize_args,
    response_object,
    sanitize_tool_call_id,
    tool_result_text,
)
from chatd.llm.errors import StreamClosedEarly, classify
from chatd.llm.sse import SSEDecoder, event_json
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

COMPLETIONS_PATH = "/chat/completions"
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


def usage_from_wire(raw: Mapping[str, Any] | None) -> Usage:
    """Normalised usage from a ``usage`` object as it came off the wire: ``input_tokens``
    excludes cache reads, as Anthropic counts them."""
    if not raw:
        return Usage()
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if prompt_details else None
    reasoning = completion_details.get("reasoning_tokens") if completion_details else None
    return _usage(
        raw.get("prompt_tokens") or 0,
        raw.get("completion_tokens") or 0,
        raw.get("total_tokens") or 0,
        cached,
        reasoning,
    )


def _usage(
    prompt: int, completion: int, total: int, cached: int | None, reasoning: int | None
) -> Usage:
    cache_read = cached or 0
    return Usage(
        input_tokens=max(prompt - cache_read, 0),
        output_tokens=completion,
        total_tokens=total,
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
            body.update(extra)  # the model config's provider options win
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        # One generator (no inner one re-yielded: that was a hop per part on the hot path).
        try:
            body = self._body(request)
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
            # Status errors are raised here, by the SDK, as for its own streaming call.
            response = await self._client.post(
                COMPLETIONS_PATH, body=body, cast_to=httpx2.Response, stream=True
            )
            reply = _Reply()
            decoder = SSEDecoder()
            chunks = response.aiter_bytes()
            done = False
            try:
                async for chunk in chunks:
                    for data in decoder.feed(chunk):
                        if data.startswith(b"[DONE]"):
                            done = True
                            break
                        for part in reply.feed(_event(data, response)):
                            yield part
                    if done:
                        await _drain(response, chunks)
                        break
            except _READ_TIMEOUTS as exc:
                raise openai.APITimeoutError(request=response.request) from exc
            except _READ_ERRORS as exc:
                raise openai.APIConnectionError(request=response.request) from exc
            finally:
                await response.aclose()
            yield reply.finish()
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc

    async def aclose(self) -> None:
        """Close the connection pool if this client owns it (a passed-in one is the caller's)."""
        if self._owns_pool:
            await self._client.close()

    async def generate(self, request: ModelRequest) -> Generated:
        try:
            body = self._body(request)
            response = await self._client.post(COMPLETIONS_PATH, body=body, cast_to=httpx2.Response)
            completion = response_object(response)
        except Exception as exc:
            raise ProviderError(classify(exc, self.provider)) from exc
        choices = completion.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else {}
        message = first.get("message") if isinstance(first, dict) else None
        text = message.get("content") if isinstance(message, dict) else None
        usage = completion.get("usage")
        return Generated(
            text=text if isinstance(text, str) else "",
            usage=usage_from_wire(usage if isinstance(usage, dict) else None),
        )


# ---- reading the stream ----------------------------------------------------------------------

# What the SDK turns into APITimeoutError / APIConnectionError while it reads a stream.
_READ_TIMEOUTS = (httpx2.TimeoutException,)
_READ_ERRORS = (httpx2.RequestError, ssl.SSLError, anyio.EndOfStream)
# After [DONE], an HTTP/1.1 body is read to its end (briefly) so the connection can be reused.
_DRAIN_SECONDS = 0.1


def _event(data: bytes, response: httpx2.Response) -> dict[str, Any]:
    """One SSE event's data as a chunk; an ``error`` object is raised as the SDK raises it."""
    chunk = event_json(data)
    if not isinstance(chunk, dict):
        raise ValueError("the stream sent a chunk that is not a JSON object")
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise openai.APIError(message, response.request, body=error)
    return chunk


async def _drain(response: httpx2.Response, chunks: AsyncIterator[bytes]) -> None:
    if response.http_version != "HTTP/1.1" or response.is_closed:
        return
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in chunks:
                await asyncio.sleep(0)  # the deadline holds on transports that never wait
    except (TimeoutError, httpx2.StreamError, *_READ_ERRORS):
        pass  # the reply is complete: cleaning up must not turn it into an error


class _Reply:
    """The parts of one streamed reply, chunk by chunk (chunks are dicts off the wire)."""

    def __init__(self) -> None:
        self.calls = ToolCallAssembler()
        self.reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.response_id: str | None = None

    def feed(self, chunk: dict[str, Any]) -> list[StreamPart]:
        self.response_id = self.response_id or chunk.get("id") or None
        self.usage = chunk.get("usage") or self.usage
        choices = chunk.get("choices")
        if not choices:
            return []
        choice = choices[0]
        parts = _delta_parts(choice.get("delta") or {}, self.calls)
        finish = choice.get("finish_reason")
        if finish and self.reason is None:
            self.reason = finish
            parts.extend(self.calls.complete())
        return parts

    def finish(self) -> Finish:
        if self.reason is None:
            raise StreamClosedEarly("openai stream closed before terminal event")
        return Finish(
            finish_reason=finish_reason(self.reason, bool(self.calls)),
            usage=usage_from_wire(self.usage),
            provider_response_id=self.response_id,
        )


def _delta_parts(delta: dict[str, Any], calls: ToolCallAssembler) -> list[StreamPart]:
    parts: list[StreamPart] = []
    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ReasoningDelta(text=reasoning))
    content = delta.get("content")
    if content:
        parts.append(TextDelta(text=content))
    for fragment in delta.get("tool_calls") or ():
        function = fragment.get("function")
        parts.append(
            calls.feed(
                fragment.get("index"),
                fragment.get("id"),
                function.get("name") if function else None,
                function.get("arguments") if function else None,
            )
        )
    return parts
