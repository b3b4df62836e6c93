"""A turn through the real adapters and the shipped fake provider over loopback HTTP."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from chatd.engine.turn import run_turn
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.tables import chat_providers
from chatd.store.turn_outcome import OutcomeKind
from chatd.testing import FakeProvider
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput, ToolRegistry
from tests.engine.turn_fakes import ScriptedClient, harness

pytestmark = pytest.mark.anyio


async def test_tool_turn_with_a_retry_over_the_openai_wire(
    db: Database, settings: Settings, fake: tuple[FakeProvider, str]
) -> None:
    provider, url = fake
    provider.add(
        [
            {"error": {"status": 429, "message": "Too many requests", "retry_after": 0}},
            {
                "text": "Checking.",
                "tool_calls": [{"id": "call_a", "name": "add", "args": {"a": 2, "b": 3}}],
                "usage": {"input_tokens": 20, "output_tokens": 7},
            },
            {"text": "2 + 3 = 5", "usage": {"input_tokens": 30, "output_tokens": 4}},
        ]
    )

    async def add(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        return ToolOutput(json.dumps({"sum": args["a"] + args["b"]}))

    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}
    h = await harness(
        db, settings, ScriptedClient(), tools=ToolRegistry([Tool("add", "adds", schema, add)])
    )
    h.ctx.client_factory = None  # the real chatd.llm.factory.create_client
    async with db.write() as conn:
        await conn.execute(chat_providers.update().values(base_url=f"{url}/v1"))

    with h.hub.chat(h.ctx.chat_id) as sub:
        with anyio.fail_after(30):
            outcome = await run_turn(h.ctx)
        events = sub.drain()

    assert outcome.kind == OutcomeKind.done, outcome.error
    [retry] = [e.retry for e in events if e.retry]
    assert retry.kind == "rate_limit" and retry.status_code == 429
    rows = await h.rows()
    assert [r["role"] for r in rows[-3:]] == ["assistant", "tool", "assistant"]
    assert rows[-2]["content"][0]["result"] == {"sum": 5}
    assert rows[-1]["content"] == [{"type": "text", "text": "2 + 3 = 5"}]
    assert rows[-3]["input_tokens"] == 20
    # The third request carried the tool result back to the model.
    last = provider.requests[-1].body
    assert any(m.get("role") == "tool" and "5" in str(m.get("content")) for m in last["messages"])
