"""What our adapters put on the wire, as the fake provider recorded it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chatd.llm.types import (
    AssistantMessage,
    CallOptions,
    FileContent,
    Message,
    ModelRequest,
    ReasoningContent,
    SystemMessage,
    TextContent,
    ToolCallContent,
    ToolMessage,
    ToolResultContent,
    UserMessage,
)
from chatd.testing import FakeProvider
from tests.llm.conftest import MakeClient
from tests.llm.parts import collect

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\nfake"
PDF = b"%PDF-1.7 fake"
HISTORY: list[Message] = [
    SystemMessage("You are chatd."),
    SystemMessage("Workspace attached."),
    UserMessage(
        [
            TextContent("Look at these."),
            FileContent("image/png", PNG, "shot.png"),
            FileContent("application/pdf", PDF, "spec.pdf"),
            FileContent("text/markdown", b"# Notes", "notes.md"),
        ]
    ),
    AssistantMessage(
        [
            ReasoningContent("I should list files.", signature="sig-1"),
            TextContent("Listing."),
            ToolCallContent("call:1/a", "execute", '{"command":"ls"}'),
            ToolCallContent("call_2", "read", "not json"),
        ]
    ),
    ToolMessage(
        [
            ToolResultContent("call:1/a", "execute", {"output": "a.txt"}),
            ToolResultContent("call_2", "read", {"error": "no path"}, is_error=True),
        ]
    ),
    UserMessage([TextContent("Thanks.")]),
]


async def _sent(
    fake: FakeProvider, make_client: MakeClient, provider: str, **kw: Any
) -> dict[str, Any]:
    await collect(make_client(provider), ModelRequest(model="fake-model", messages=HISTORY, **kw))
    return fake.requests[-1].body


async def test_openai_messages(fake: FakeProvider, make_client: MakeClient) -> None:
    body = await _sent(
        fake, make_client, "openai", options=CallOptions(max_output_tokens=123, temperature=0.2)
    )
    assert body["max_completion_tokens"] == 123 and body["temperature"] == 0.2
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "You are chatd."}
    assert messages[1] == {"role": "system", "content": "Workspace attached."}
    user = messages[2]["content"]
    assert user[0] == {"type": "text", "text": "Look at these."}
    png_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert user[1] == {"type": "image_url", "image_url": {"url": png_url}}
    assert user[2]["type"] == "file" and user[2]["file"]["filename"] == "spec.pdf"
    assert user[3]["type"] == "text" and "# Notes" in user[3]["text"]
    assistant = messages[3]
    assert assistant["content"] == "Listing."
    assert [(c["id"], c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        ("call_1_a", '{"command":"ls"}'),
        ("call_2", "{}"),
    ]
    assert messages[4] == {
        "role": "tool",
        "tool_call_id": "call_1_a",
        "content": '{"output": "a.txt"}',
    }
    assert messages[5]["tool_call_id"] == "call_2"
    assert messages[6] == {"role": "user", "content": "Thanks."}


async def test_openai_compat_uses_max_tokens_and_provider_options(
    fake: FakeProvider, make_client: MakeClient
) -> None:
    options = CallOptions(max_output_tokens=50, provider_options={"openai-compat": {"seed": 7}})
    body = await _sent(fake, make_client, "openai-compat", options=options)
    assert body["max_tokens"] == 50 and "max_completion_tokens" not in body
    assert body["seed"] == 7


async def test_anthropic_messages(fake: FakeProvider, make_client: MakeClient) -> None:
    body = await _sent(
        fake, make_client, "anthropic", options=CallOptions(max_output_tokens=77, top_k=5)
    )
    assert body["max_tokens"] == 77 and body["top_k"] == 5
    assert body["system"] == [
        {"type": "text", "text": "You are chatd."},
        {"type": "text", "text": "Workspace attached.", "cache_control": {"type": "ephemeral"}},
    ]
    user, assistant, results = body["messages"]
    assert [b["type"] for b in user["content"]] == ["text", "image", "document", "text"]
    assert user["content"][1]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert user["content"][2]["source"]["media_type"] == "application/pdf"
    assert assistant["role"] == "assistant"
    thinking, text, call1, call2 = assistant["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": "I should list files.",
        "signature": "sig-1",
    }
    assert text == {"type": "text", "text": "Listing."}
    assert (call1["id"], call1["input"]) == ("call_1_a", {"command": "ls"})
    assert call2["input"] == {}
    # The tool results and the next user message share one user turn.
    assert results["role"] == "user"
    kinds = [(b["type"], b.get("tool_use_id"), b.get("is_error")) for b in results["content"]]
    assert kinds == [
        ("tool_result", "call_1_a", False),
        ("tool_result", "call_2", True),
        ("text", None, None),
    ]
    # Prompt caching: the last two messages end with a cache mark, the first does not.
    assert "cache_control" not in user["content"][-1]
    assert assistant["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert results["content"][-1]["cache_control"] == {"type": "ephemeral"}
