"""The fake Anthropic messages wire: SSE ``event:``/``data:`` frames, ``ping`` included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from chatd.testing.frames import DELTA, END, STRUCTURE, Frame, sse_event, text_piece
from chatd.testing.script import HttpFault, Reply, StreamFault

STOP = {
    "stop": "end_turn",
    "tool-calls": "tool_use",
    "length": "max_tokens",
    "content-filter": "refusal",
}
_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "model: not found"),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    u = reply.usage
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    }


def error_body(fault: HttpFault) -> Any:
    if fault.body is not None:
        return fault.body
    kind, message = _ERRORS.get(fault.status, ("api_error", "Upstream error."))
    return {
        "type": "error",
        "error": {"type": fault.type or kind, "message": fault.message or message},
    }


def stream_error_frame(fault: StreamFault) -> str:
    return sse_event(
        "error", {"type": "error", "error": {"type": fault.type, "message": fault.message}}
    )


def _message(
    reply: Reply, model: str, reply_id: str, content: list[Any], stop: str | None
) -> dict[str, Any]:
    return {
        "id": reply_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": _usage(reply, reply.usage.output_tokens if stop else 1),
    }


def _block(index: int, block: dict[str, Any], deltas: list[dict[str, Any]]) -> Iterator[Frame]:
    yield (
        STRUCTURE,
        sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": block},
        ),
    )
    for delta in deltas:
        yield (
            DELTA,
            sse_event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            ),
        )
    yield STRUCTURE, sse_event("content_block_stop", {"type": "content_block_stop", "index": index})


def stream_frames(reply: Reply, model: str, reply_id: str) -> Iterator[Frame]:
    yield (
        STRUCTURE,
        sse_event(
            "message_start",
            {"type": "message_start", "message": _message(reply, model, reply_id, [], None)},
        ),
    )
    yield STRUCTURE, sse_event("ping", {"type": "ping"})
    index = 0
    if reply.reasoning:
        deltas = [{"type": "thinking_delta", "thinking": p} for p in reply.reasoning]
        if reply.signature:
            deltas.append({"type": "signature_delta", "signature": reply.signature})
        yield from _block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
        index += 1
    if reply.text:
        yield from _text_block(reply, index)
        index += 1
    for call in reply.tool_calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in call.chunks]
        yield from _block(index, block, deltas)
        index += 1
    u = reply.usage
    delta_usage: dict[str, Any] = {"output_tokens": u.output_tokens}
    if u.reasoning_tokens:
        delta_usage["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    stop = STOP.get(reply.finish_reason, reply.finish_reason)
    yield (
        END,
        sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": delta_usage,
            },
        ),
    )
    yield END, sse_event("message_stop", {"type": "message_stop"})


def _text_block(reply: Reply, index: int) -> Iterator[Frame]:
    """Text deltas are built lazily so a stamp is taken when its frame is sent."""
    start = {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "text", "text": ""},
    }
    yield STRUCTURE, sse_event("content_block_start", start)
    for piece in reply.text:
        delta = {"type": "text_delta", "text": text_piece(reply, piece)}
        yield (
            DELTA,
            sse_event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            ),
        )
    yield STRUCTURE, sse_event("content_block_stop", {"type": "content_block_stop", "index": index})


def message(reply: Reply, model: str, reply_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append(
            {
                "type": "thinking",
                "thinking": "".join(reply.reasoning),
                "signature": reply.signature or "",
            }
        )
    if reply.text:
        content.append({"type": "text", "text": reply.full_text})
    for call in reply.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _args(call.args_json)}
        )
    return _message(
        reply, model, reply_id, content, STOP.get(reply.finish_reason, reply.finish_reason)
    )


def _args(args_json: str) -> Any:
    try:
        return json.loads(args_json)
    except ValueError:
        return {}
