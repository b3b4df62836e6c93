"""Stored history to provider messages (engine-behaviour §9.5).

:func:`load_history` reads the rows the model sees (``store.messages.prompt_rows``, §2.2) and
the files they attach; :func:`to_messages` is the pure conversion: system rows as text, user
parts (files by id, file references rendered as text), assistant text, reasoning and tool
calls, tool rows as results. Then the repairs: tool-call ids sanitised, arguments normalised
to a JSON object, a synthetic error result for every call left without one, and results
that answer no call dropped.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from chatd.llm.types import (
    AssistantMessage,
    FileContent,
    Message,
    ReasoningContent,
    SystemMessage,
    TextContent,
    ToolCallContent,
    ToolMessage,
    ToolResultContent,
    UserMessage,
)
from chatd.store.files import get_file
from chatd.store.messages import prompt_rows
from chatd.store.sql import Connection

Row = Mapping[Any, Any]
INTERRUPTED_RESULT = "tool call was interrupted before it produced a result"
PASTED_TEXT = re.compile(r"^pasted-text-\d{4}(-\d{2}){5}\.txt$")
PASTED_TEXT_MAX = 128 * 1024
_UNSAFE_ID = re.compile(r"[^a-zA-Z0-9_-]")


async def load_history(conn: Connection, chat_id: uuid.UUID) -> list[Message]:
    return await history_of(conn, await prompt_rows(conn, chat_id))


async def history_of(conn: Connection, rows: Sequence[Row]) -> list[Message]:
    """The provider messages for prompt rows already read (their files are read here)."""
    files: dict[uuid.UUID, FileContent] = {}
    for file_id in _file_ids(rows):
        found = await get_file(conn, file_id)
        if found is not None:
            files[file_id] = FileContent(found["mimetype"], bytes(found["data"]), found["name"])
    return to_messages(rows, files)


def content_parts(row: Row) -> list[dict[str, Any]]:
    """The row's content parts (the JSON objects of its ``content`` list)."""
    content = row["content"]
    return [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []


def _file_ids(rows: Sequence[Row]) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for row in rows:
        if row["role"] != "user" or row["visibility"] == "user":
            continue
        for part in content_parts(row):
            if part.get("type") == "file" and part.get("file_id"):
                ids.append(uuid.UUID(str(part["file_id"])))
    return list(dict.fromkeys(ids))


def sanitize_id(tool_call_id: str) -> str:
    return _UNSAFE_ID.sub("_", tool_call_id)


def args_object(args: Any) -> str:
    """Tool arguments as JSON object text: ``{}`` when empty, invalid or not an object."""
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return "{}"
    return json.dumps(args) if isinstance(args, dict) else "{}"


def to_messages(rows: Sequence[Row], files: Mapping[uuid.UUID, FileContent]) -> list[Message]:
    messages: list[Message] = []
    for row in rows:
        if row["visibility"] == "user":
            continue
        message = _convert(row, files)
        if message is None:
            continue
        previous = messages[-1] if messages else None
        if isinstance(message, ToolMessage) and isinstance(previous, ToolMessage):
            messages[-1] = ToolMessage(previous.results + message.results)
        else:
            messages.append(message)
    return repair_tool_results(messages)


def _convert(row: Row, files: Mapping[uuid.UUID, FileContent]) -> Message | None:
    parts = content_parts(row)
    role = row["role"]
    if role == "system":
        text = "".join(str(p.get("text") or "") for p in parts if p.get("type") == "text")
        return SystemMessage(text) if text.strip() else None
    if role == "user":
        content = [u for p in parts if (u := _user_content(p, files)) is not None]
        return UserMessage(content) if content else None
    if role == "assistant":
        items = [a for p in parts if (a := _assistant_content(p)) is not None]
        return AssistantMessage(items) if items else None
    if role == "tool":
        results = [
            ToolResultContent(
                tool_call_id=sanitize_id(str(p.get("tool_call_id") or "")),
                tool_name=str(p.get("tool_name") or ""),
                result=p.get("result"),
                is_error=bool(p.get("is_error")),
            )
            for p in parts
            if p.get("type") == "tool-result"
        ]
        return ToolMessage(results) if results else None
    return None


def _user_content(
    part: dict[str, Any], files: Mapping[uuid.UUID, FileContent]
) -> TextContent | FileContent | None:
    kind = part.get("type")
    if kind == "text":
        text = str(part.get("text") or "")
        return TextContent(text) if text.strip() else None
    if kind == "file-reference":
        return TextContent(render_file_reference(part))
    if kind == "file" and part.get("file_id"):
        found = files.get(uuid.UUID(str(part["file_id"])))
        if found is None:
            return TextContent(f"[attached file {part.get('name') or part['file_id']} is gone]")
        if PASTED_TEXT.match(found.name):
            return TextContent(_pasted_text(found))
        return found
    # context-file and skill parts reach the model through the system prompt, not as input.
    return None


def render_file_reference(part: Mapping[str, Any]) -> str:
    name = part.get("file_name") or ""
    start, end = part.get("start_line") or 0, part.get("end_line") or 0
    lines = f"line {start}" if start == end else f"lines {start}-{end}"
    return f"{name} ({lines}):\n```\n{part.get('content') or ''}\n```"


def _pasted_text(file: FileContent) -> str:
    text = file.data[:PASTED_TEXT_MAX].decode("utf-8", errors="replace")
    if len(file.data) > PASTED_TEXT_MAX:
        text += f"\n[pasted text truncated to {PASTED_TEXT_MAX // 1024} KiB]"
    return text


def _assistant_content(
    part: dict[str, Any],
) -> TextContent | ReasoningContent | ToolCallContent | None:
    kind = part.get("type")
    text = str(part.get("text") or "")
    if kind == "text":
        return TextContent(text) if text.strip() else None
    if kind == "reasoning":
        signature = part.get("signature") or None
        return ReasoningContent(text, signature) if text.strip() or signature else None
    if kind == "tool-call" and not part.get("provider_executed"):
        return ToolCallContent(
            id=sanitize_id(str(part.get("tool_call_id") or "")),
            name=str(part.get("tool_name") or ""),
            args_json=args_object(part.get("args")),
        )
    return None


def repair_tool_results(messages: list[Message]) -> list[Message]:
    """Every tool call answered right after its assistant message, in call order."""
    repaired: list[Message] = []
    for i, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            continue  # emitted with the assistant message it answers
        repaired.append(message)
        if not isinstance(message, AssistantMessage):
            continue
        calls = [c for c in message.content if isinstance(c, ToolCallContent)]
        if not calls:
            continue
        following = messages[i + 1] if i + 1 < len(messages) else None
        given = following.results if isinstance(following, ToolMessage) else []
        by_id = {r.tool_call_id: r for r in given}
        repaired.append(
            ToolMessage(
                [
                    by_id.get(call.id)
                    or ToolResultContent(call.id, call.name, {"error": INTERRUPTED_RESULT}, True)
                    for call in calls
                ]
            )
        )
    return repaired
