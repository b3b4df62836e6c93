"""Context compaction (engine-behaviour §8) and the prompt query that starts from its summary
(§2.2), against a fake model."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
import sqlalchemy as sa

from chatd.engine.compaction import (
    EMPTY_SUMMARY,
    SUMMARY_PREFACE,
    context_tokens,
    maybe_compact,
    should_compact,
)
from chatd.engine.models import ResolvedModel
from chatd.engine.prompt import load_history
from chatd.engine.turn import run_turn
from chatd.llm.types import (
    CallOptions,
    Generated,
    ModelRequest,
    SystemMessage,
    TextContent,
    Usage,
    UserMessage,
)
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, parts_json
from chatd.sdk.events import ChatStreamEvent
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.messages import insert_message, list_messages, prompt_rows
from chatd.store.tables import chat_messages
from chatd.store.turn_outcome import OutcomeKind
from tests.engine.quickgen_fakes import Factory, FakeModel, Setup, failure, setup
from tests.engine.turn_fakes import ScriptedClient, harness, reply

pytestmark = pytest.mark.anyio

LIMIT = 1000
OVER = Usage(input_tokens=600, cache_read_tokens=80, cache_creation_tokens=20)  # 700 = 70%


def test_context_tokens() -> None:
    assert context_tokens(OVER) == 700
    assert context_tokens(Usage(total_tokens=900, output_tokens=100)) == 900
    assert context_tokens(Usage()) == 0


@pytest.mark.parametrize(
    ("threshold", "tokens", "limit", "expected"),
    [
        (70, 700, 1000, True),
        (70, 699, 1000, False),
        (70, 128_000, 128_000, True),
        (0, 1, 1000, True),
        (100, 5000, 1000, False),  # 100 disables
        (70, 0, 1000, False),  # no usage reported
        (70, 700, 0, False),
        (50, 64_000, 128_000, True),
        (50, 63_999, 128_000, False),
    ],
)
def test_threshold_maths(threshold: int, tokens: int, limit: int, expected: bool) -> None:
    assert should_compact(threshold, tokens, limit) is expected


def model(client: FakeModel, config_id: uuid.UUID, threshold: int = 70) -> ResolvedModel:
    return ResolvedModel(
        config_id=config_id,
        provider="openai",
        model="gpt-4o",
        client=client,
        options=CallOptions(max_output_tokens=4000),
        context_limit=128_000,
        compression_threshold=threshold,
        cost=None,
        api_key="sk-test",
        base_url=None,
    )


async def running(db: Database, settings: Settings) -> tuple[Setup, uuid.UUID]:
    s = await setup(db, settings)
    worker_id = uuid.uuid4()
    await s.set(status="running", worker_id=worker_id)
    s.hub.start_turn(s.chat_id)
    return s, worker_id


async def rows(db: Database, chat_id: uuid.UUID) -> list[dict[str, Any]]:
    async with db.read() as conn:
        result = await conn.execute(
            sa.select(chat_messages)
            .where(chat_messages.c.chat_id == chat_id)
            .order_by(chat_messages.c.id)
        )
    return [r.as_dict() for r in result]


def summary_of(events: list[ChatStreamEvent]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for e in events:
        if e.message_part is not None:
            part = e.message_part.part
            out.append((f"part:{e.message_part.role}", part.type.value))
        elif e.message is not None:
            out.append(("message", e.message.role.value))
    return out


async def test_below_the_threshold_nothing_happens(db: Database, settings: Settings) -> None:
    s, worker_id = await running(db, settings)
    client = FakeModel("openai", "summary")
    ctx = s.ctx(settings, Factory(), worker_id)
    with s.hub.chat(s.chat_id) as sub:
        below = Usage(input_tokens=699)
        assert not await maybe_compact(ctx, model(client, s.config_id), [], below, LIMIT)
        assert not await maybe_compact(ctx, model(client, s.config_id, 100), [], OVER, LIMIT)
        assert sub.drain() == []
    assert client.requests == []


async def test_compaction_persists_three_rows_and_publishes(
    db: Database, settings: Settings
) -> None:
    s, worker_id = await running(db, settings)
    summary = "## Invariants\n- tests must pass\n## Pending tasks\n- fix login"
    client = FakeModel(
        "openai", Generated(f"  {summary}  ", Usage(input_tokens=900, output_tokens=50))
    )
    ctx = s.ctx(settings, Factory(), worker_id)
    async with db.read() as conn:
        history = await load_history(conn, s.chat_id)
    before = await rows(db, s.chat_id)

    with s.hub.chat(s.chat_id) as sub:
        assert await maybe_compact(ctx, model(client, s.config_id), history, OVER, LIMIT)
        events = sub.drain()

    # The model saw the whole history plus the request for a summary, without tools.
    [request] = client.requests
    assert request.allow_tools is False and request.model == "gpt-4o"
    assert request.messages[: len(history)] == history
    ask = request.messages[-1]
    assert isinstance(ask, UserMessage) and isinstance(ask.content[0], TextContent)
    assert "Pending tasks" in ask.content[0].text and "User decisions" in ask.content[0].text

    assert summary_of(events) == [
        ("part:assistant", "tool-call"),
        ("message", "assistant"),
        ("message", "tool"),
        ("part:tool", "tool-result"),
    ]
    call = events[0].message_part
    assert call is not None and call.part.tool_name == "chat_summarized"
    call_id = call.part.tool_call_id or ""
    assert call_id.startswith("chat_summarized_")
    assert call.part.args == {"source": "automatic", "threshold_percent": 70}

    new = (await rows(db, s.chat_id))[len(before) :]
    assert [(r["role"], r["visibility"], r["compressed"]) for r in new] == [
        ("user", "model", True),
        ("assistant", "user", True),
        ("tool", "both", True),
    ]
    prompt_row, call_row, result_row = new
    assert prompt_row["content"] == [{"type": "text", "text": SUMMARY_PREFACE + summary}]
    [stored_call] = call_row["content"]
    assert stored_call["tool_call_id"] == call_id and stored_call["args"]["threshold_percent"] == 70
    assert (call_row["input_tokens"], call_row["output_tokens"]) == (900, 50)
    assert call_row["model_config_id"] == s.config_id
    [stored_result] = result_row["content"]
    assert stored_result["tool_call_id"] == call_id
    assert stored_result["result"] == {
        "summary": summary,
        "source": "automatic",
        "threshold_percent": 70,
        "usage_percent": 70.0,
        "context_tokens": 700,
        "context_limit_tokens": 1000,
    }
    assert not stored_result.get("is_error")
    result_event = events[-1].message_part
    assert result_event is not None and result_event.part.result == stored_result["result"]

    # Users see the call and its result, not the model-only summary row.
    async with db.read() as conn:
        visible, _ = await list_messages(conn, s.chat_id, before_id=0, after_id=0, limit=50)
    assert [m.id for m in visible][:2] == [result_row["id"], call_row["id"]]


async def test_the_prompt_starts_from_the_newest_summary(db: Database, settings: Settings) -> None:
    s, worker_id = await running(db, settings)
    ctx = s.ctx(settings, Factory(), worker_id)
    resolved = model(FakeModel("openai", "first summary", "second summary"), s.config_id)

    async def add(role: str, text: str, visibility: str = "both") -> None:
        async with db.write() as conn:
            await insert_message(
                conn,
                now=db.now(),
                chat_id=s.chat_id,
                role=role,
                content=parts_json([ChatMessagePart(type=ChatMessagePartType.text, text=text)]),
                visibility=visibility,
            )

    async def texts() -> list[tuple[str, str]]:
        async with db.read() as conn:
            found = await prompt_rows(conn, s.chat_id)
        return [(r["role"], r["content"][0].get("text", r["content"][0]["type"])) for r in found]

    await add("assistant", "old answer")
    assert [t for _, t in await texts()] == [
        "system",
        "Please fix the flaky login test in CI",
        "old answer",
    ]
    assert await maybe_compact(ctx, resolved, [], OVER, LIMIT)
    await add("user", "next question")
    await add("system", "a later system row", visibility="model")
    assert await texts() == [
        ("system", "system"),
        ("user", SUMMARY_PREFACE + "first summary"),
        ("user", "next question"),
        ("system", "a later system row"),
    ]
    assert await maybe_compact(ctx, resolved, [], OVER, LIMIT)
    await add("assistant", "after the second summary")
    assert await texts() == [
        ("system", "system"),
        ("system", "a later system row"),
        ("user", SUMMARY_PREFACE + "second summary"),
        ("assistant", "after the second summary"),
    ]
    async with db.read() as conn:
        history = await load_history(conn, s.chat_id)
    assert isinstance(history[0], SystemMessage)
    assert any(isinstance(m, UserMessage) and "second summary" in str(m.content) for m in history)


@pytest.mark.parametrize("answer", ["   ", "failure"])
async def test_an_empty_or_failed_summary_changes_nothing(
    db: Database, settings: Settings, answer: str
) -> None:
    s, worker_id = await running(db, settings)
    client = FakeModel("openai", failure() if answer == "failure" else answer)
    before = await rows(db, s.chat_id)
    with s.hub.chat(s.chat_id) as sub:
        ctx = s.ctx(settings, Factory(), worker_id)
        assert not await maybe_compact(ctx, model(client, s.config_id), [], OVER, LIMIT)
        events = sub.drain()
    assert summary_of(events) == [("part:assistant", "tool-call"), ("part:tool", "tool-result")]
    result = events[-1].message_part
    assert result is not None and result.part.is_error is True
    assert isinstance(result.part.result, dict)
    if answer == "failure":
        assert str(result.part.result["error"]).startswith("compaction failed")
    else:
        assert result.part.result == {"error": EMPTY_SUMMARY}
    assert await rows(db, s.chat_id) == before


async def test_a_chat_taken_away_is_not_compacted(db: Database, settings: Settings) -> None:
    s, worker_id = await running(db, settings)
    await s.set(worker_id=uuid.uuid4())  # another worker took it over
    before = await rows(db, s.chat_id)
    with s.hub.chat(s.chat_id) as sub:
        ctx = s.ctx(settings, Factory(), worker_id)
        client = FakeModel("openai", "summary")
        assert not await maybe_compact(ctx, model(client, s.config_id), [], OVER, LIMIT)
        assert summary_of(sub.drain()) == [("part:assistant", "tool-call")]
    assert await rows(db, s.chat_id) == before


async def test_the_model_config_limit_is_the_fallback(db: Database, settings: Settings) -> None:
    s, worker_id = await running(db, settings)
    client = FakeModel("openai", "summary")
    ctx = s.ctx(settings, Factory(), worker_id)
    usage = Usage(input_tokens=89_600)  # 70% of the config's 128k
    assert await maybe_compact(ctx, model(client, s.config_id), [], usage, 0)
    tool_row = (await rows(db, s.chat_id))[-1]
    assert tool_row["content"][0]["result"]["context_limit_tokens"] == 128_000


async def test_a_turn_compacts_after_a_large_step(db: Database, settings: Settings) -> None:
    """Through the agent loop: the step is saved, then summarised, and the turn ends."""

    class Summarising(ScriptedClient):
        async def generate(self, request: ModelRequest) -> Generated:
            return Generated("what happened so far")

    client = Summarising(reply("Hello", Usage(input_tokens=100_000)))  # 78% of 128k
    h = await harness(db, settings, client)
    with anyio.fail_after(10):
        outcome = await run_turn(h.ctx)
    assert outcome.kind == OutcomeKind.done
    stored = [(r["role"], r["visibility"], r["compressed"]) for r in await h.rows()]
    assert stored[-4:] == [
        ("assistant", "both", False),
        ("user", "model", True),
        ("assistant", "user", True),
        ("tool", "both", True),
    ]
    async with db.read() as conn:
        history = await load_history(conn, h.ctx.chat_id)
    assert [type(m).__name__ for m in history] == ["SystemMessage", "UserMessage"]
    assert "what happened so far" in str(history[1])
