"""The fake OpenAI chat completions wire: SSE ``data:`` chunks ending in ``[DONE]``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from chatd.testing.frames import DELTA, END, STRUCTURE, Frame, sse_data, text_piece
from chatd.testing.script import HttpFault, Reply, StreamFault

FINISH = {
    "stop": "stop",
    "tool-calls": "tool_calls",
    "length": "length",
    "content-filter": "content_filter",
}
_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "Service temporarily unavailable."),
}


def usage(reply: Reply) -> dict[str, Any]:
    u = reply.usage
    prompt = u.input_tokens + u.cache_read_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def error_body(fault: HttpFault) -> Any:
    if fault.body is not None:
        return fault.body
    kind, code, message = _ERRORS.get(fault.status, ("server_error", None, "Upstream error."))
    return {
        "error": {
            "message": fault.message or message,
            "type": fault.type or kind,
            "param": None,
            "code": fault.code or code,
        }
    }


def stream_error_frame(fault: StreamFault) -> str:
    return sse_data({"error": {"message": fault.message, "type": fault.type, "code": None}})


def _chunk(reply_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    return sse_data(
        {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
    )


def _call_fragment(
    reply: Reply, index: int, fields: dict[str, Any], call_id: str
) -> dict[str, Any]:
    fragment: dict[str, Any] = {}
    if not reply.omit_index:
        fragment["index"] = index
    if call_id and not reply.omit_id:
        fragment["id"] = call_id
    fragment.update(fields)
    return {"tool_calls": [fragment]}


def stream_frames(reply: Reply, model: str, reply_id: str) -> Iterator[Frame]:
    yield STRUCTURE, _chunk(reply_id, model, {"role": "assistant", "content": ""})
    for piece in reply.reasoning:
        yield DELTA, _chunk(reply_id, model, {"reasoning_content": piece})
    for piece in reply.text:
        yield DELTA, _chunk(reply_id, model, {"content": text_piece(reply, piece)})
    for index, call in enumerate(reply.tool_calls):
        for n, piece in enumerate(call.chunks):
            if n == 0:
                fields = {"type": "function", "function": {"name": call.name, "arguments": piece}}
                delta = _call_fragment(reply, index, fields, call.id)
            else:
                delta = _call_fragment(reply, index, {"function": {"arguments": piece}}, "")
            yield DELTA, _chunk(reply_id, model, delta)
    yield END, _chunk(reply_id, model, {}, FINISH.get(reply.finish_reason, reply.finish_reason))
    yield (
        END,
        sse_data(
            {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": usage(reply),
            }
        ),
    )
    yield END, "data: [DONE]\n\n"


def completion(reply: Reply, model: str, reply_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.full_text or None}
    if reply.reasoning:
        message["reasoning_content"] = "".join(reply.reasoning)
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.args_json}}
            for c in reply.tool_calls
        ]
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": FINISH.get(reply.finish_reason, reply.finish_reason),
                "logprobs": None,
            }
        ],
        "usage": usage(reply),
    }
