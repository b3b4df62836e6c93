"""The chat completions stream read from raw bytes: chunking, SSE details, and failures.

The contract tests (``test_stream_parts``, ``test_classify``) run against the fake provider;
these feed the adapter exact bytes through an in-process transport.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatd.llm.factory import create_client
from chatd.llm.types import (
    Finish,
    ProviderError,
    ReasoningDelta,
    StreamPart,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from chatd.sdk.chats import ChatErrorKind as K
from tests.llm.parts import hello


def frame(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return frame({"id": "chatcmpl-1", "choices": [choice], **extra})


USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": 9,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 5},
    "completion_tokens_details": {"reasoning_tokens": 3},
}
# Reasoning both ways, text, index-less calls (Ollama) and indexed fragments, a comment, CRLF.
STREAM = b"".join(
    [
        chunk({"role": "assistant", "content": ""}),
        b": OPENROUTER PROCESSING\n\n",
        chunk({"reasoning_content": "Thinking"}),
        chunk({"reasoning": " more"}),
        chunk({"content": "H\u00e9llo "}).replace(b"\n\n", b"\r\n\r\n"),
        chunk({"content": "there"}),
        chunk({"tool_calls": [{"id": "a", "function": {"name": "ls", "arguments": '{"p":'}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "b", "function": {"name": "pwd"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "stop"),
        frame({"id": "chatcmpl-1", "choices": [], "usage": USAGE}),
        b"data: [DONE]\n\n",
    ]
)
EXPECTED: list[StreamPart] = [
    ReasoningDelta("Thinking"),
    ReasoningDelta(" more"),
    TextDelta("H\u00e9llo "),
    TextDelta("there"),
    ToolCallDelta("a", "ls", '{"p":'),
    ToolCallDelta("a", "ls", "1}"),
    ToolCallDelta("b", "pwd", ""),
    ToolCallDelta("b", "pwd", "{}"),
    ToolCall("a", "ls", '{"p":1}'),
    ToolCall("b", "pwd", "{}"),
    Finish(
        "tool-calls",
        Usage(
            input_tokens=15,
            output_tokens=9,
            total_tokens=29,
            reasoning_tokens=3,
            cache_read_tokens=5,
        ),
        "chatcmpl-1",
    ),
]

Body = Callable[[], AsyncIterator[bytes]]


def pieces(*chunks: bytes) -> Body:
    async def body() -> AsyncIterator[bytes]:
        for piece in chunks:
            yield piece

    return body


async def run(body: Body, status: int = 200, headers: dict[str, str] | None = None) -> list[Any]:
    """The parts streamed from a server answering ``body``; a ProviderError ends the list."""
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        all_headers = {"content-type": "text/event-stream", **(headers or {})}
        return httpx2.Response(status, headers=all_headers, content=body())

    out: list[Any] = []
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        client = create_client(
            provider="openai-compat",
            model="m",
            api_key="k",
            base_url="http://provider.test/v1",
            http_client=http,
        )
        try:
            with anyio.fail_after(10):
                async for part in client.stream(hello()):
                    out.append(part)
        except ProviderError as exc:
            out.append(exc)
    [request] = seen
    assert request.url == "http://provider.test/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer k"
    sent = json.loads(request.content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@pytest.mark.anyio
async def test_parts_from_raw_bytes() -> None:
    assert await run(pieces(STREAM)) == EXPECTED


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=40))
def test_any_split_of_the_bytes_gives_the_same_parts(cuts: list[int]) -> None:
    assert anyio.run(run, pieces(*split(STREAM, cuts))) == EXPECTED


@pytest.mark.anyio
async def test_nothing_after_done_is_read_as_a_chunk() -> None:
    after = chunk({"content": "late"}) + b"data: {not json\n\n"
    assert await run(pieces(STREAM + after)) == EXPECTED


@pytest.mark.anyio
async def test_finish_without_done_is_complete() -> None:
    assert await run(pieces(STREAM.removesuffix(b"data: [DONE]\n\n"))) == EXPECTED


def failure(parts: list[Any]) -> ProviderError:
    assert isinstance(parts[-1], ProviderError)
    return parts[-1]


@pytest.mark.anyio
async def test_end_without_finish_reason_is_a_retryable_timeout() -> None:
    parts = await run(pieces(chunk({"content": "partial"}), b"data: [DONE]\n\n"))
    assert parts[0] == TextDelta("partial")
    err = failure(parts).error
    assert (err.kind, err.retryable, err.status_code) == (K.timeout, True, None)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "detail", "kind", "retryable"),
    [
        ({"message": "Internal server error", "type": "server_error"}, "Internal", K.generic, True),
        ({"message": "", "code": "rate_limit_exceeded"}, "streaming", K.rate_limit, True),
        ("overloaded", "An error occurred during streaming", K.generic, False),
    ],
)
async def test_error_object_in_the_stream(
    error: Any, detail: str, kind: K, retryable: bool
) -> None:
    parts = await run(pieces(chunk({"content": "a"}), frame({"error": error})))
    caught = failure(parts)
    assert parts[:-1] == [TextDelta("a")]
    assert isinstance(caught.__cause__, openai.APIError)
    assert (caught.error.kind, caught.error.retryable) == (kind, retryable)
    assert detail in caught.error.detail


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("raised", "wrapped"),
    [
        (httpx2.ReadTimeout("read timed out"), openai.APITimeoutError),
        (httpx2.RemoteProtocolError("incomplete chunked read"), openai.APIConnectionError),
        (httpx2.ReadError("connection reset"), openai.APIConnectionError),
    ],
)
async def test_a_failed_read_is_the_sdks_connection_error(
    raised: Exception, wrapped: type[Exception]
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield chunk({"content": "a"})
        raise raised

    parts = await run(body)
    caught = failure(parts)
    assert type(caught.__cause__) is wrapped and caught.__cause__.__cause__ is raised
    assert (caught.error.kind, caught.error.retryable) == (K.timeout, True)


@pytest.mark.anyio
async def test_a_chunk_that_is_not_json_is_a_generic_error() -> None:
    caught = failure(await run(pieces(b"data: {oops\n\n")))
    assert (caught.error.kind, caught.error.retryable) == (K.generic, False)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers", "body", "kind", "retry_after"),
    [
        (
            429,
            {"retry-after-ms": "250"},
            {"error": {"code": "rate_limit_exceeded"}},
            K.rate_limit,
            0.25,
        ),
        (429, {}, {"error": {"code": "insufficient_quota"}}, K.usage_limit, None),
        (404, {}, {"error": {"code": "model_not_found"}}, K.config, None),
        (529, {"retry-after": "3"}, {"error": {"message": "busy"}}, K.overloaded, 3.0),
    ],
)
async def test_status_errors_are_the_sdks(
    status: int, headers: dict[str, str], body: Any, kind: K, retry_after: float | None
) -> None:
    parts = await run(pieces(json.dumps(body).encode()), status, headers)
    caught = failure(parts)
    assert isinstance(caught.__cause__, openai.APIStatusError)
    assert caught.__cause__.status_code == status
    err = caught.error
    assert (err.kind, err.status_code, err.retry_after, err.provider) == (
        kind,
        status,
        retry_after,
        "openai-compat",
    )
