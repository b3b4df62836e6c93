"""Wire conversion shared by every provider: the repairs of engine-behaviour §9.5 and a read
reply's body."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import httpx2

from chatd.llm.types import FileContent

_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PDF_TYPE = "application/pdf"


def new_tool_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def sanitize_tool_call_id(raw: str | None) -> str:
    """Tool-call ids limited to ``[a-zA-Z0-9_-]``; an empty one gets a fresh id."""
    cleaned = _ID_UNSAFE.sub("_", raw or "")
    return cleaned or new_tool_call_id()


def args_problem(args_json: str | None) -> str | None:
    """Why a model's tool arguments are not a JSON object (None: they are, or are empty)."""
    if not (args_json or "").strip():
        return None
    try:
        value = json.loads(args_json or "")
    except ValueError as exc:
        return str(exc)
    return None if isinstance(value, dict) else "not a JSON object"


def normalize_args(args_json: str | None) -> str:
    """Tool arguments as a JSON object text: ``{}`` when empty, invalid, or not an object."""
    return json.dumps(args_object(args_json), separators=(",", ":"), ensure_ascii=False)


def args_object(args_json: str | None) -> dict[str, Any]:
    try:
        value = json.loads(args_json or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def file_kind(file: FileContent) -> str:
    """``image``, ``pdf`` or ``text`` (anything else is sent as decoded text)."""
    media_type = file.media_type.split(";")[0].strip().lower()
    if media_type in IMAGE_TYPES:
        return "image"
    if media_type == PDF_TYPE:
        return "pdf"
    return "text"


def base64_data(file: FileContent) -> str:
    return base64.b64encode(file.data).decode("ascii")


def data_url(file: FileContent) -> str:
    return f"data:{file.media_type};base64,{base64_data(file)}"


def file_as_text(file: FileContent) -> str:
    label = f"Attached file {file.name}" if file.name else "Attached file"
    body = file.data.decode("utf-8", errors="replace")
    return f"{label} ({file.media_type}):\n{body}"


def tool_result_text(result: Any) -> str:
    """A stored tool result (a JSON value) as the text a provider receives."""
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False)


def response_object(response: httpx2.Response) -> dict[str, Any]:
    """A read (non-streamed) response's JSON body, which must be an object."""
    body = json.loads(response.content)
    if not isinstance(body, dict):
        raise ValueError("the provider's reply is not a JSON object")
    return body
