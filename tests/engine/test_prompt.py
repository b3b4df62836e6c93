"""History to provider messages (engine-behaviour §9.5, §2.2)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chatd.engine.prompt import INTERRUPTED_RESULT, load_history, to_messages
from chatd.llm.types import (
    AssistantMessage,
    FileContent,
    ReasoningContent,
    SystemMessage,
    TextContent,
    ToolCallContent,
    ToolMessage,
    ToolResultContent,
    UserMessage,
)
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.files import insert_file
from chatd.store.messages import insert_message
from tests.helpers import bootstrap_admin, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


def row(role: str, *parts: dict[str, Any], visibility: str = "both") -> dict[str, Any]:
    return {"role": role, "visibility": visibility, "content": list(parts)}


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def call(call_id: str, name: str = "t", args: Any = None) -> dict[str, Any]:
    return {"type": "tool-call", "tool_call_id": call_id, "tool_name": name, "args": args}


def result(call_id: str, value: Any, name: str = "t", **extra: Any) -> dict[str, Any]:
    return {
        "type": "tool-result",
        "tool_call_id": call_id,
        "tool_name": name,
        "result": value,
        **extra,
    }


def test_roles_order_and_visibility() -> None:
    rows = [
        row("system", text("be nice"), visibility="model"),
        row("user", text("hi")),
        row("assistant", text("summary shown to users only"), visibility="user"),
        row("assistant", {"type": "reasoning", "text": "hmm", "signature": "s"}, text("hello")),
        row("user", text("   ")),  # blank: nothing to send
        row("user", text("bye")),
    ]
    assert to_messages(rows, {}) == [
        SystemMessage("be nice"),
        UserMessage([TextContent("hi")]),
        AssistantMessage([ReasoningContent("hmm", "s"), TextContent("hello")]),
        UserMessage([TextContent("bye")]),
    ]


def test_dangling_tool_calls_get_synthetic_results_in_call_order() -> None:
    rows = [
        row("user", text("go")),
        row("assistant", text("calling"), call("a"), call("b.1", "u", '{"x": 1}'), call("c")),
        row("tool", result("c", {"output": "C"})),
        row("tool", result("zzz", {"output": "orphan"})),
        row("user", text("next")),
    ]
    messages = to_messages(rows, {})
    assert messages[1] == AssistantMessage(
        [
            TextContent("calling"),
            ToolCallContent("a", "t", "{}"),
            ToolCallContent("b_1", "u", '{"x": 1}'),  # id sanitised
            ToolCallContent("c", "t", "{}"),
        ]
    )
    synthetic = {"error": INTERRUPTED_RESULT}
    assert messages[2] == ToolMessage(
        [
            ToolResultContent("a", "t", synthetic, True),
            ToolResultContent("b_1", "u", synthetic, True),
            ToolResultContent("c", "t", {"output": "C"}),
        ]
    )
    assert messages[3] == UserMessage([TextContent("next")])
    assert len(messages) == 4  # the orphan result was dropped


def test_tool_results_without_a_call_are_dropped_and_args_normalised() -> None:
    rows = [
        row("tool", result("x", {"output": "?"})),
        row("assistant", call("k", args="not json"), call("l", args=[1, 2])),
        row("tool", result("k", {"error": "bad"}, is_error=True), result("l", 5)),
    ]
    assert to_messages(rows, {}) == [
        AssistantMessage([ToolCallContent("k", "t", "{}"), ToolCallContent("l", "t", "{}")]),
        ToolMessage(
            [ToolResultContent("k", "t", {"error": "bad"}, True), ToolResultContent("l", "t", 5)]
        ),
    ]


def test_files_and_file_references() -> None:
    image_id, gone_id, pasted_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    image = FileContent("image/png", b"\x89PNG", "shot.png")
    pasted = FileContent(
        "text/plain", b"x" * (128 * 1024 + 5), "pasted-text-2025-01-02-03-04-05.txt"
    )
    rows = [
        row(
            "user",
            text("look"),
            {"type": "file", "file_id": str(image_id), "media_type": "image/png"},
            {"type": "file", "file_id": str(gone_id), "name": "old.pdf"},
            {"type": "file", "file_id": str(pasted_id)},
            {
                "type": "file-reference",
                "file_name": "src/app.py",
                "start_line": 3,
                "end_line": 5,
                "content": "def f():\n    pass",
            },
            {"type": "context-file", "context_file_path": "/home/AGENTS.md"},
        ),
        row("assistant", {"type": "file", "file_id": str(image_id)}, text("seen")),
    ]
    [user, assistant] = to_messages(rows, {image_id: image, pasted_id: pasted})
    assert isinstance(user, UserMessage)
    assert user.content[0] == TextContent("look")
    assert user.content[1] is image
    assert user.content[2] == TextContent("[attached file old.pdf is gone]")
    inlined = user.content[3]
    assert isinstance(inlined, TextContent)
    assert inlined.text.startswith("x" * 100) and inlined.text.endswith("truncated to 128 KiB]")
    assert user.content[4] == TextContent("src/app.py (lines 3-5):\n```\ndef f():\n    pass\n```")
    assert len(user.content) == 5  # the context-file part is not model input
    assert assistant == AssistantMessage([TextContent("seen")])


async def test_load_history_reads_prompt_rows_and_files(db: Database, settings: Settings) -> None:
    owner = await bootstrap_admin(db, settings)
    config_id = await seed_model_config(db)
    chat_id = await make_chat(db, owner, config_id, text="first")
    async with db.write() as conn:
        file_id = await insert_file(
            conn,
            owner_id=owner.id,
            organization_id=owner.org_id,
            name="a.png",
            mimetype="image/png",
            data=b"PNGDATA",
            created_at=db.now(),
        )
        for role, content, visibility in [
            ("assistant", [call("c1")], "both"),
            ("assistant", [text("only for the user")], "user"),
            ("user", [text("see"), {"type": "file", "file_id": str(file_id)}], "both"),
        ]:
            await insert_message(
                conn,
                now=db.now(),
                chat_id=chat_id,
                role=role,
                content=content,
                visibility=visibility,
            )
    async with db.read() as conn:
        messages = await load_history(conn, chat_id)
    assert messages == [
        SystemMessage("system"),
        UserMessage([TextContent("first")]),
        AssistantMessage([ToolCallContent("c1", "t", "{}")]),
        ToolMessage([ToolResultContent("c1", "t", {"error": INTERRUPTED_RESULT}, True)]),
        UserMessage([TextContent("see"), FileContent("image/png", b"PNGDATA", "a.png")]),
    ]
