"""run_turn end to end against a scripted model: text, parallel tools, dynamic tools."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from chatd.engine.turn import run_turn
from chatd.llm.types import (
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
)
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput, ToolRegistry
from tests.engine.turn_fakes import ScriptedClient, harness, payloads, reply

pytestmark = pytest.mark.anyio

COST = {
    "cost": {
        "input_price_per_million_tokens": 2.5,
        "output_price_per_million_tokens": 10,
        "cache_read_price_per_million_tokens": 1.25,
    }
}


async def test_text_turn_publishes_parts_and_persists_the_step(
    db: Database, settings: Settings
) -> None:
    usage = Usage(input_tokens=1000, output_tokens=301, total_tokens=1301, cache_read_tokens=7)
    client = ScriptedClient(
        [
            ReasoningDelta("let me "),
            ReasoningDelta("think", signature="sig-1"),
            TextDelta("Hello"),
            TextDelta(", world"),
            Finish("stop", usage, "resp-1"),
        ]
    )
    h = await harness(db, settings, client, options=COST)
    with h.hub.chat(h.ctx.chat_id) as sub:
        with anyio.fail_after(10):
            outcome = await run_turn(h.ctx)
        events = sub.drain()

    assert outcome.kind == OutcomeKind.done and outcome.error is None
    assert payloads(events) == [
        ("part:assistant", {"type": "reasoning", "text": "let me "}),
        ("part:assistant", {"type": "reasoning", "text": "think"}),
        ("part:assistant", {"type": "text", "text": "Hello"}),
        ("part:assistant", {"type": "text", "text": ", world"}),
        ("message", "assistant"),
    ]
    [row] = await h.rows("assistant")
    reasoning, text = row["content"]
    assert reasoning["type"] == "reasoning" and reasoning["text"] == "let me think"
    assert reasoning["signature"] == "sig-1"
    assert reasoning["created_at"] and reasoning["completed_at"]
    assert text == {"type": "text", "text": "Hello, world"}
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (1000, 301, 1301)
    assert row["cache_read_tokens"] == 7 and row["reasoning_tokens"] is None
    # ceil(1000 * 2.5 + 301 * 10 + 7 * 1.25) = ceil(5518.75)
    assert row["total_cost_micros"] == 5519
    assert row["context_limit"] == 128000
    assert row["provider_response_id"] == "resp-1"
    assert row["runtime_ms"] is None or row["runtime_ms"] >= 0
    assert row["model_config_id"] == h.config_id and row["visibility"] == "both"
    # the model the turn resolved, for its turn summary
    assert h.ctx.model is not None and h.ctx.model.config_id == h.config_id
    assert h.ctx.model.client is client
    message_event = events[-1].message
    assert message_event is not None and message_event.usage is not None
    assert message_event.usage.input_tokens == 1000
    # The model saw the system row and the user message, and the central key was used.
    [request] = client.requests
    assert [type(m).__name__ for m in request.messages] == ["SystemMessage", "UserMessage"]
    assert h.factory_calls == [
        {"provider": "openai", "model": "gpt-4o", "api_key": "sk-test", "base_url": None}
    ]


async def test_unpriced_model_stores_no_cost(db: Database, settings: Settings) -> None:
    client = ScriptedClient(reply("hi", Usage(input_tokens=5, output_tokens=2)))
    h = await harness(db, settings, client)
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    [row] = await h.rows("assistant")
    assert row["total_cost_micros"] is None and row["input_tokens"] == 5


def _pair_of_tools(log: list[str]) -> ToolRegistry:
    """Two tools that only finish when both are running at once (so they must be parallel)."""
    started = {"slow": asyncio.Event(), "fast": asyncio.Event()}

    def make(name: str, other: str) -> Tool:
        async def run(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
            started[name].set()
            await started[other].wait()
            if name == "slow":
                await asyncio.sleep(0)  # let "fast" finish first
                await asyncio.sleep(0)
            log.append(name)
            return ToolOutput(
                f'{{"tool": "{name}", "n": {args["n"]}, "call": "{ctx.tool_call_id}"}}'
            )

        schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
        return Tool(name, f"the {name} tool", schema, run)

    return ToolRegistry([make("slow", "fast"), make("fast", "slow")])


async def test_parallel_tools_then_a_second_step(db: Database, settings: Settings) -> None:
    finished: list[str] = []
    client = ScriptedClient(
        [
            TextDelta("Running both."),
            ToolCallDelta("call_1", "slow", '{"n":'),
            ToolCallDelta("call_1", "slow", " 1}"),
            ToolCall("call_1", "slow", '{"n": 1}'),
            ToolCall("call_2", "fast", '{"n": 2}'),
            Finish("tool-calls", Usage(input_tokens=10, output_tokens=5)),
        ],
        reply("Both done."),
    )
    h = await harness(db, settings, client, tools=_pair_of_tools(finished))
    with h.hub.chat(h.ctx.chat_id) as sub:
        with anyio.fail_after(10):
            outcome = await run_turn(h.ctx)
        events = sub.drain()

    assert outcome.kind == OutcomeKind.done
    assert finished == ["fast", "slow"]  # ran concurrently; fast finished first
    kinds = payloads(events)
    results = [p for k, p in kinds if k == "part:tool"]
    # Results are published in call order, after both finished.
    assert [(r["tool_call_id"], r["result"]["tool"]) for r in results] == [
        ("call_1", "slow"),
        ("call_2", "fast"),
    ]
    assert all(r["type"] == "tool-result" and "created_at" in r for r in results)
    first_result = kinds.index(("part:tool", results[0]))
    assert [k for k, _ in kinds[first_result:]] == [
        "part:tool",
        "part:tool",
        "message",
        "message",
        "message",
        "part:assistant",
        "part:assistant",
        "message",
    ]
    calls = [p for k, p in kinds if k == "part:assistant" and p["type"] == "tool-call"]
    assert calls[0] == {
        "type": "tool-call",
        "tool_call_id": "call_1",
        "tool_name": "slow",
        "args_delta": '{"n":',
    }
    complete = [c for c in calls if "args" in c]
    assert [c["args"] for c in complete] == [{"n": 1}, {"n": 2}]
    assert all("created_at" in c for c in complete)

    rows = await h.rows()
    assert [r["role"] for r in rows] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    step1 = rows[2]["content"]
    assert [p["type"] for p in step1] == ["text", "tool-call", "tool-call"]
    assert rows[3]["content"][0]["result"] == {"tool": "slow", "n": 1, "call": "call_1"}
    assert rows[4]["content"][0]["tool_call_id"] == "call_2"
    assert rows[5]["content"] == [{"type": "text", "text": "Both done."}]
    # Step 2's prompt carries the step-1 results, and the tools were offered to the model.
    second = client.requests[1]
    assert isinstance(second.messages[-1], ToolMessage)
    assert [r.tool_call_id for r in second.messages[-1].results] == ["call_1", "call_2"]
    assert {t.name for t in second.tools} == {"slow", "fast"}


async def test_unknown_tool_and_failing_tool_become_error_results(
    db: Database, settings: Settings
) -> None:
    async def boom(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        raise RuntimeError("disk on fire")

    tools = ToolRegistry([Tool("boom", "fails", {"type": "object"}, boom)])
    client = ScriptedClient(
        [
            ToolCall("c1", "nope", "{}"),
            ToolCall("c2", "boom", "{}"),
            Finish("tool-calls"),
        ],
        reply("sorry"),
    )
    h = await harness(db, settings, client, tools=tools)
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    results = [r["content"][0] for r in await h.rows("tool")]
    assert results[0]["result"] == {"error": "Tool not found: nope"} and results[0]["is_error"]
    assert results[1]["is_error"] and "disk on fire" in results[1]["result"]["error"]


async def test_dynamic_tool_call_requires_action(db: Database, settings: Settings) -> None:
    async def echo(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        return ToolOutput("plain text")

    tools = ToolRegistry([Tool("echo", "echo", {"type": "object"}, echo)])
    dynamic = [
        {"name": "my_tool", "description": "client side", "input_schema": {"type": "object"}},
        {"name": "echo", "description": "collides with the built-in"},
    ]
    client = ScriptedClient(
        [
            ToolCall("d1", "my_tool", '{"q": "x"}'),
            ToolCall("e1", "echo", "{}"),
            Finish("tool-calls"),
        ]
    )
    h = await harness(db, settings, client, tools=tools, dynamic_tools=dynamic)
    with h.hub.chat(h.ctx.chat_id) as sub:
        outcome = await run_turn(h.ctx)
        events = sub.drain()

    assert outcome.kind == OutcomeKind.requires_action
    assert [(c.id, c.name, c.args_json) for c in outcome.tool_calls] == [
        ("d1", "my_tool", '{"q": "x"}')
    ]
    specs = {t.name: t for t in client.requests[0].tools}
    assert set(specs) == {"echo", "my_tool"} and specs["echo"].description == "echo"
    assert [k for k, _ in payloads(events)][-2:] == ["message", "message"]
    rows = await h.rows()
    assert [r["role"] for r in rows[-2:]] == ["assistant", "tool"]
    assert [p["tool_call_id"] for p in rows[-2]["content"]] == ["d1", "e1"]
    assert rows[-1]["content"][0]["result"] == {"output": "plain text"}
    assert len(client.requests) == 1


async def test_max_steps_ends_the_turn(db: Database, settings: Settings) -> None:
    async def noop(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        return ToolOutput("{}")

    step = [ToolCall("c", "noop", "{}"), Finish("tool-calls")]
    client = ScriptedClient(list(step), list(step), list(step))
    tools = ToolRegistry([Tool("noop", "", {"type": "object"}, noop)])
    h = await harness(db, settings, client, tools=tools, max_steps=2)
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    assert len(client.requests) == 2
    assert len(await h.rows("assistant")) == 2 and len(await h.rows("tool")) == 2


async def test_empty_step_persists_nothing(db: Database, settings: Settings) -> None:
    client = ScriptedClient([TextDelta("   "), Finish("stop")])
    h = await harness(db, settings, client)
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    assert await h.rows("assistant") == []
