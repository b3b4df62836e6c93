"""What an MCP tool gives, as the turn offers and records it (engine-behaviour §17): shared by
the chat's MCP servers (:mod:`chatd.tools.mcp`) and the workspace's
(:mod:`chatd.tools.workspace_mcp`).

A tool's input schema is the server's properties and required list. A call's answer becomes
a tool result: text items joined by newlines; the first image or audio item becomes a file of
the chat (shown after the result); other content is named; ``isError`` is passed through.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mcp import types as mcp_types

from chatd.tools.chat_files import store_file
from chatd.tools.registry import Attachment, ToolCallContext, ToolOutput

# The largest image or audio item kept as a chat file (as an upload's limit).
MAX_MEDIA_BYTES = 10 << 20


def input_schema(raw: Any) -> dict[str, Any]:
    """The server's properties and required list, as an object schema."""
    raw = raw if isinstance(raw, dict) else {}
    properties = raw.get("properties")
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties if isinstance(properties, dict) else {},
    }
    required = raw.get("required")
    if isinstance(required, list) and required:
        schema["required"] = [str(name) for name in required]
    return schema


async def _media(
    item: mcp_types.ImageContent | mcp_types.AudioContent, ctx: ToolCallContext
) -> Attachment | str:
    """The item stored as a chat file, or why it was not."""
    try:
        data = base64.b64decode(item.data, validate=True)
    except (binascii.Error, ValueError):
        return f"[invalid {item.type} content]"
    if len(data) > MAX_MEDIA_BYTES:
        return f"[{item.type} content too large]"
    if ctx.turn is None:
        return f"[unsupported content type: {item.type}]"
    extension = item.mime_type.rpartition("/")[2] or "bin"
    return await store_file(ctx, f"mcp-{item.type}.{extension}", item.mime_type, data)


async def convert(result: Any, ctx: ToolCallContext) -> ToolOutput:
    """A call's answer (a ``CallToolResult``) as a tool result."""
    if not isinstance(result, mcp_types.CallToolResult):
        return ToolOutput("the MCP server gave no tool result", is_error=True)
    pieces: list[str] = []
    attachments: list[Attachment] = []
    for item in result.content:
        if isinstance(item, mcp_types.TextContent):
            pieces.append(item.text)
        elif isinstance(item, mcp_types.ImageContent | mcp_types.AudioContent) and not attachments:
            stored = await _media(item, ctx)
            if isinstance(stored, str):
                pieces.append(stored)
            else:
                attachments.append(stored)
                pieces.append(f"[{item.type} attached as {stored.name}]")
        else:
            pieces.append(f"[unsupported content type: {getattr(item, 'type', 'unknown')}]")
    text = "\n".join(pieces)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, sort_keys=True)
    return ToolOutput(text, is_error=bool(result.is_error), attachments=tuple(attachments))
