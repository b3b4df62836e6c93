"""Stopping a turn (engine-behaviour §5.7): partial output kept on interrupt, refused after edit."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from chatd.engine.prompt import INTERRUPTED_RESULT
from chatd.engine.turn import run_turn
from chatd.engine.types import StopReason
from chatd.llm.types import Finish, TextDelta, ToolCall, ToolCallDelta
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.settings import Settings
from chatd.store import chat_state, stream_log
from chatd.store.db import Database
from chatd.store.tables import chats
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput, ToolRegistry
from tests.engine.turn_fakes import Harness, ScriptedClient, Stall, harness

pytestmark = pytest.mark.anyio


async def _stop(
    h: Harness, reached: asyncio.Event, reason: StopReason = StopReason.interrupted
) -> TurnOutcome:
    """Run the turn until ``reached``, then stop it as the worker does."""
    task = asyncio.create_task(run_turn(h.ctx))
    with anyio.fail_after(10):
        await reached.wait()
        h.ctx.stop_reason = reason
        task.cancel()
        return await task


async def _interrupt(h: Harness) -> None:
    async with h.db.write() as conn:
        _, outbox = await chat_state.interrupt(conn, h.db.now(), h.ctx.chat_id)
        await stream_log.seal(conn, outbox, h.db.now())
    h.hub.publish(outbox)


async def test_interrupt_mid_stream_keeps_partial_output(db: Database, settings: Settings) -> None:
    stall = Stall()
    client = ScriptedClient(
        [
            TextDelta("I will "),
            TextDelta("look"),
            ToolCall("c1", "my_tool", '{"a": 1}'),
            ToolCallDelta("c2", "my_tool", '{"b":'),
            stall,
        ]
    )
    dynamic = [{"name": "my_tool", "input_schema": {"type": "object"}}]
    h = await harness(db, settings, client, dynamic_tools=dynamic)
    task = asyncio.create_task(run_turn(h.ctx))
    with anyio.fail_after(10):
        await stall.reached.wait()
    await _interrupt(h)  # the chat is now waiting, worker cleared: a plain interrupt
    h.ctx.stop_reason = StopReason.interrupted
    task.cancel()
    with h.hub.chat(h.ctx.chat_id) as sub:
        with anyio.fail_after(10):
            outcome = await task
        events = sub.drain()

    assert outcome.kind == OutcomeKind.interrupted
    assert [e.type.value for e in events] == ["message", "message", "message"]
    [assistant] = await h.rows("assistant")
    text, call1, call2 = assistant["content"]
    assert text == {"type": "text", "text": "I will look"}
    assert (call1["tool_call_id"], call1["args"]) == ("c1", {"a": 1})
    assert (call2["tool_call_id"], call2["args"]) == ("c2", {})  # arguments never completed
    assert assistant["input_tokens"] is None and assistant["runtime_ms"] is None
    results = [r["content"][0] for r in await h.rows("tool")]
    assert [r["tool_call_id"] for r in results] == ["c1", "c2"]
    assert all(r["result"] == {"error": INTERRUPTED_RESULT} and r["is_error"] for r in results)


async def test_interrupt_while_tools_run_keeps_finished_results(
    db: Database, settings: Settings
) -> None:
    blocked = asyncio.Event()

    async def quick(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        return ToolOutput("done quickly")

    async def stuck(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        blocked.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    tools = ToolRegistry(
        [Tool("quick", "", {"type": "object"}, quick), Tool("stuck", "", {"type": "object"}, stuck)]
    )
    client = ScriptedClient(
        [ToolCall("q", "quick", "{}"), ToolCall("s", "stuck", "{}"), Finish("tool-calls")]
    )
    h = await harness(db, settings, client, tools=tools)
    outcome = await _stop(h, blocked)
    assert outcome.kind == OutcomeKind.interrupted
    results = {r["content"][0]["tool_call_id"]: r["content"][0] for r in await h.rows("tool")}
    assert results["q"]["result"] == {"output": "done quickly"}
    assert results["s"]["result"] == {"error": INTERRUPTED_RESULT}


async def test_shutdown_drops_a_partial_answer_without_tool_calls(
    db: Database, settings: Settings
) -> None:
    """The chat goes back to pending and the resumed turn makes the step again whole; a kept
    half answer would read as the turn's last word there."""
    stall = Stall()
    client = ScriptedClient([TextDelta("half an answer"), stall])
    h = await harness(db, settings, client)
    outcome = await _stop(h, stall.reached, StopReason.shutdown)
    assert outcome.kind == OutcomeKind.shutdown
    assert await h.rows("assistant") == [] and await h.rows("tool") == []


async def test_shutdown_keeps_a_partial_step_with_tool_calls(
    db: Database, settings: Settings
) -> None:
    """Its tools may have acted: the resumed turn continues from the (interrupted) results."""
    stall = Stall()
    client = ScriptedClient(
        [TextDelta("let me look"), ToolCall("c1", "my_tool", '{"a": 1}'), stall]
    )
    h = await harness(db, settings, client)
    outcome = await _stop(h, stall.reached, StopReason.shutdown)
    assert outcome.kind == OutcomeKind.shutdown
    [assistant] = await h.rows("assistant")
    text, call = assistant["content"]
    assert text == {"type": "text", "text": "let me look"} and call["tool_call_id"] == "c1"
    [tool] = await h.rows("tool")
    assert tool["content"][0]["result"] == {"error": INTERRUPTED_RESULT}


async def test_interrupt_before_any_output_persists_nothing(
    db: Database, settings: Settings
) -> None:
    stall = Stall()
    h = await harness(db, settings, ScriptedClient([stall]))
    assert (await _stop(h, stall.reached)).kind == OutcomeKind.interrupted
    assert await h.rows("assistant") == []


async def test_output_after_an_edit_is_refused(db: Database, settings: Settings) -> None:
    stall = Stall()
    client = ScriptedClient([TextDelta("stale answer"), ToolCall("c", "x", "{}"), stall])
    h = await harness(db, settings, client)
    task = asyncio.create_task(run_turn(h.ctx))
    with anyio.fail_after(10):
        await stall.reached.wait()
    [user] = await h.rows("user")
    async with db.write() as conn:
        await chat_state.edit_message(
            conn,
            db.now(),
            h.ctx.chat_id,
            user["id"],
            chat_state.NewUserMessage(
                author_id=h.owner.id,
                content=[ChatMessagePart(type=ChatMessagePartType.text, text="edited")],
            ),
        )
    h.ctx.stop_reason = StopReason.interrupted
    task.cancel()
    with anyio.fail_after(10):
        outcome = await task
    assert outcome.kind == OutcomeKind.interrupted
    assert await h.rows("assistant") == [] and await h.rows("tool") == []
    async with db.read() as conn:
        status = (
            await conn.execute(sa.select(chats.c.status).where(chats.c.id == h.ctx.chat_id))
        ).scalar_one()
    assert status == "pending"


async def test_a_takeover_between_steps_ends_the_turn(db: Database, settings: Settings) -> None:
    """The chat was edited while the model streamed: the finished step is refused too."""
    gate = asyncio.Event()

    class Gated(ScriptedClient):
        async def stream(self, request):  # type: ignore[no-untyped-def,override]
            self.requests.append(request)
            yield TextDelta("answer to the old question")
            await gate.wait()
            yield Finish("stop")

    h = await harness(db, settings, Gated())
    task = asyncio.create_task(run_turn(h.ctx))
    await asyncio.sleep(0)
    async with db.write() as conn:
        await conn.execute(
            chats.update()
            .where(chats.c.id == h.ctx.chat_id)
            .values(status="pending", worker_id=None)
        )
    gate.set()
    with anyio.fail_after(10):
        outcome = await task
    assert outcome.kind == OutcomeKind.interrupted
    assert await h.rows("assistant") == []
