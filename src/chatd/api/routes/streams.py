"""The WebSocket routes, as the OpenAPI document describes them.

The reference documents each WebSocket as a GET operation returning its event schema; chatd
does the same so clients generated from the document know the event shapes.
"""

from __future__ import annotations

from typing import Any

from chatd.api.openapi import websocket_route
from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent
from chatd.sdk.git import WorkspaceAgentGitServerMessage


def _chat_param() -> dict[str, Any]:
    return {
        "name": "chat",
        "in": "path",
        "required": True,
        "description": "Chat ID",
        "schema": {"type": "string", "format": "uuid"},
    }


def document() -> None:
    """Add the WebSocket routes to the OpenAPI document."""
    websocket_route(
        "/api/experimental/chats/watch",
        summary="Watch chat events for a user via WebSockets",
        tag="Chats",
        model=ChatWatchEvent,
        parameters=[],
    )
    websocket_route(
        "/api/experimental/chats/{chat}/stream",
        summary="Stream chat events via WebSockets",
        tag="Chats",
        model=ChatStreamEvent,
        parameters=[
            _chat_param(),
            {
                "name": "after_id",
                "in": "query",
                "required": False,
                "description": "Only replay messages with a greater id",
                "schema": {"type": "integer", "format": "int64"},
            },
        ],
    )
    websocket_route(
        "/api/experimental/chats/{chat}/stream/desktop",
        summary="Connect to chat workspace desktop via WebSockets",
        tag="Chats",
        model=None,
        parameters=[_chat_param()],
        status="101",
    )
    websocket_route(
        "/api/experimental/chats/{chat}/stream/git",
        summary="Watch chat workspace git state via WebSockets",
        tag="Chats",
        model=WorkspaceAgentGitServerMessage,
        parameters=[_chat_param()],
    )
