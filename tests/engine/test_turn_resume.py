"""A turn claimed again after its worker stopped starts from what was committed (§4.5,
chatd.engine.resume): a turn whose last step was saved is finished, not run again; one that
saved tool results continues; open client-side calls end it in requires_action."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

from chatd.engine.resume import ended_turn, outcome_of
from chatd.engine.turn import run_turn
from chatd.engine.worker import Worker
from chatd.events.hub import EventHub
from chatd.llm.types import Generated, ModelRequest, ToolCallContent, ToolMessage, UserMessage
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.settings import Settings
from chatd.store.compaction import ContextSummary, persist_summary
from chatd.store.db import Database
from chatd.store.messages import prompt_rows
from chatd.store.steps import Step, save_step
from chatd.store.tables import chat_messages
from chatd.store.turn_outcome import OutcomeKind
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput, ToolRegistry
from tests.engine.turn_fakes import Harness, ScriptedClient, harness, reply
from tests.engine.worker_support import (
    chat_row,
    fast,
    queue_message,
    set_columns,
    text_part,
    wait_status,
)
from tests.helpers import bootstrap_admin, make_chat, seed_model_config
from tests.store.test_worker_state import ago

pytestmark = pytest.mark.anyio

DYNAMIC = [{"name": "my_tool", "input_schema": {"type": "object"}}]


async def _echo(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return ToolOutput(str(args.get("text", "")))


ECHO = ToolRegistry([Tool("echo", "", {"type": "object"}, _echo)])


def call(call_id: str, name: str, **args: Any) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_call, tool_call_id=call_id, tool_name=name, args=args
    )


def result(call_id: str, name: str, output: str) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_result,
        tool_call_id=call_id,
        tool_name=name,
        result={"output": output},
    )


async def saved(h: Harness, *assistant: ChatMessagePart, results: list[ChatMessagePart]) -> None:
    """A step as the turn persists it, by the chat's own worker."""
    step = Step(model_config_id=h.config_id, assistant=list(assistant), tool_results=results)
    await save_step(h.db, h.db.now(), h.ctx.chat_id, h.ctx.worker_id, step, turn_seq=0)


async def compacted(h: Harness) -> None:
    """A context summary persisted after the last step, as compaction does."""
    summary = ContextSummary(
        chat_id=h.ctx.chat_id,
        model_config_id=h.config_id,
        prompt_text="Summary: the user said hello; the agent answered.",
        call=call("chat_summarized_1", "chat_summarized", source="automatic"),
        result=result("chat_summarized_1", "chat_summarized", "summary"),
    )
    async with h.db.write() as conn:
        assert await persist_summary(conn, h.db.now(), h.ctx.worker_id, summary) is not None


async def turn(h: Harness) -> Any:
    with anyio.fail_after(10):
        return await run_turn(h.ctx)


async def roles(h: Harness) -> list[str]:
    return [r["role"] for r in await h.rows() if not r["compressed"]]


# ---- where the committed history says the turn stands ---------------------------------------


async def test_a_turn_whose_last_step_was_saved_is_done_without_asking_the_model(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient(reply("a second answer")))
    await saved(h, text_part("The answer."), results=[])
    outcome = await turn(h)
    assert outcome.kind == OutcomeKind.done and outcome.tool_calls == []
    assert h.client.requests == []
    assert await roles(h) == ["system", "user", "assistant"]


async def test_a_turn_that_saved_tool_results_continues_from_them(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient(reply("Echoed.")), tools=ECHO)
    await saved(h, call("c1", "echo", text="hi"), results=[result("c1", "echo", "hi")])
    outcome = await turn(h)
    assert outcome.kind == OutcomeKind.done
    [request] = h.client.requests
    last = request.messages[-1]
    assert isinstance(last, ToolMessage) and last.results[0].result == {"output": "hi"}
    assert await roles(h) == ["system", "user", "assistant", "tool", "assistant"]


async def test_open_client_tool_calls_end_the_turn_in_requires_action(
    db: Database, settings: Settings
) -> None:
    """A step mixing a built-in call (answered) and a client-side one (open): the finish
    would have said requires_action for the open one."""
    h = await harness(db, settings, ScriptedClient(), tools=ECHO, dynamic_tools=DYNAMIC)
    await saved(
        h,
        text_part("Two things."),
        call("c1", "echo", text="x"),
        call("c2", "my_tool", a=1),
        results=[result("c1", "echo", "x")],
    )
    outcome = await turn(h)
    assert outcome.kind == OutcomeKind.requires_action
    assert outcome.tool_calls == [ToolCallContent("c2", "my_tool", '{"a": 1}')]
    assert h.client.requests == []


async def test_an_open_built_in_call_runs_on_as_interrupted(
    db: Database, settings: Settings
) -> None:
    """No step is saved without its built-in results; should one be, the prompt answers it
    as interrupted and the model goes on."""
    h = await harness(db, settings, ScriptedClient(reply("Going on.")), tools=ECHO)
    await saved(h, call("c1", "echo", text="x"), results=[])
    assert (await turn(h)).kind == OutcomeKind.done
    [request] = h.client.requests
    last = request.messages[-1]
    assert isinstance(last, ToolMessage) and last.results[0].is_error


async def test_a_message_after_the_answer_starts_a_new_turn(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient(reply("Another answer.")))
    await saved(h, text_part("The answer."), results=[])
    await h.say("one more thing")
    assert (await turn(h)).kind == OutcomeKind.done
    assert len(h.client.requests) == 1
    assert await roles(h) == ["system", "user", "assistant", "user", "assistant"]


async def test_a_summary_after_the_last_step_still_reads_as_done(
    db: Database, settings: Settings
) -> None:
    """The worker stopped right after compacting the final step: the prompt ends with the
    summary, the plain rows behind it say the model had stopped."""
    h = await harness(db, settings, ScriptedClient(reply("a second answer")))
    await saved(h, text_part("The answer."), results=[])
    await compacted(h)
    assert (await turn(h)).kind == OutcomeKind.done
    assert h.client.requests == []


async def test_a_summary_after_a_tool_step_continues_from_the_summary(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient(reply("Carrying on.")), tools=ECHO)
    await saved(h, call("c1", "echo", text="hi"), results=[result("c1", "echo", "hi")])
    await compacted(h)
    assert (await turn(h)).kind == OutcomeKind.done
    [request] = h.client.requests
    first = request.messages[-1]
    assert isinstance(first, UserMessage)  # the summary row the prompt starts from


async def test_deleted_rows_do_not_count(db: Database, settings: Settings) -> None:
    """An edit soft-deletes the answer and everything after the edited message."""
    h = await harness(db, settings, ScriptedClient(reply("Fresh answer.")))
    await saved(h, text_part("The answer."), results=[])
    async with db.write() as conn:
        await conn.execute(
            chat_messages.update()
            .where(chat_messages.c.chat_id == h.ctx.chat_id, chat_messages.c.role == "assistant")
            .values(deleted=True)
        )
    assert (await turn(h)).kind == OutcomeKind.done
    assert len(h.client.requests) == 1


async def test_a_turn_after_a_user_message_reads_no_more_than_before(
    db: Database, settings: Settings
) -> None:
    """The check reads the prompt rows the turn loads anyway: one read of the messages for the
    whole turn start; only a prompt ending with a summary reads the rows behind it."""
    statements: list[str] = []

    def record(statement: str) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "chat_messages" in statement:
            statements.append(statement)

    h = await harness(db, settings, ScriptedClient(reply("Hi."), reply("Again.")))
    with db.observe(record):
        assert (await turn(h)).kind == OutcomeKind.done
        assert len(statements) == 1
        await compacted(h)
        statements.clear()
        async with db.read() as conn:
            rows = await prompt_rows(conn, h.ctx.chat_id)
            assert await ended_turn(conn, h.ctx.chat_id, rows, lambda _: False) is not None
        assert len(statements) == 2


# ---- through a real worker -------------------------------------------------------------------


class Model(ScriptedClient):
    """Streams the scripts; titles and turn summaries get a fixed answer."""

    async def generate(self, request: ModelRequest) -> Generated:
        return Generated("Quiet answer")


async def test_a_recovered_chat_whose_turn_had_ended_is_finished_and_its_queue_promoted(
    db: Database, settings: Settings
) -> None:
    """The worker died after saving the answer, before its finish: the recovering worker
    ends the chat waiting, promotes the queued message and runs only that one's turn."""
    owner = await bootstrap_admin(db, settings)
    config = await seed_model_config(db)
    chat_id = await make_chat(db, owner, config, "question")
    dead = uuid.uuid4()
    await set_columns(db, chat_id, status="running", worker_id=dead, heartbeat_at=ago(600))
    step = Step(model_config_id=config, assistant=[text_part("The answer.")])
    await save_step(db, db.now(), chat_id, dead, step, turn_seq=0)
    await queue_message(db, chat_id, "follow-up")
    model = Model(reply("The follow-up answer."))

    def factory(**_: Any) -> Model:
        return model

    hub = EventHub()
    worker = Worker(db, hub, fast(settings), client_factory=factory)
    await worker.start()
    try:
        row = await wait_status(db, chat_id, "waiting")
    finally:
        await worker.stop()
    assert row["queue_length"] == 0 and row["last_error"] is None
    assert len(model.requests) == 1  # the follow-up's turn; the answered one never re-asked
    async with db.read() as conn:
        rows = [r for r in await prompt_rows(conn, chat_id) if r["role"] != "system"]
    assert [(r["role"], r["content"][0]["text"]) for r in rows] == [
        ("user", "question"),
        ("assistant", "The answer."),
        ("user", "follow-up"),
        ("assistant", "The follow-up answer."),
    ]
    assert (await chat_row(db, chat_id))["worker_id"] is None


def test_a_step_whose_stop_after_tool_succeeded_ended_the_turn() -> None:
    def row(role: str, *parts: dict[str, Any]) -> dict[str, Any]:
        return {"role": role, "content": list(parts), "compressed": False}

    asked = row(
        "assistant",
        {"type": "tool-call", "tool_call_id": "c1", "tool_name": "propose_plan", "args": {}},
    )
    ok = row("tool", {"type": "tool-result", "tool_call_id": "c1", "tool_name": "propose_plan"})
    failed = row(
        "tool",
        {
            "type": "tool-result",
            "tool_call_id": "c1",
            "tool_name": "propose_plan",
            "is_error": True,
        },
    )

    def stops(name: str) -> bool:
        return name == "propose_plan"

    def never(name: str) -> bool:
        return False

    ended = outcome_of([asked, ok], never, stops)
    assert ended is not None and ended.kind == OutcomeKind.done
    assert outcome_of([asked, failed], never, stops) is None
    assert outcome_of([asked, ok], never) is None
