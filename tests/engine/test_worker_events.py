"""What an already-connected client sees around a turn: engine-behaviour §10.4 A, C-F."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chatd.engine.types import TurnContext
from chatd.events.delivery import Subscription
from chatd.events.hub import EventHub
from chatd.llm.types import ClassifiedError, ToolCallContent
from chatd.sdk.chats import (
    ChatErrorKind,
    ChatMessagePart,
    ChatMessagePartType,
    ChatMessageRole,
    parts_json,
)
from chatd.sdk.events import ChatStreamEvent, ChatStreamRetry, ChatWatchEvent
from chatd.settings import Settings
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.outbox import Outbox
from chatd.store.transition_steps import message_event
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.worker_support import (
    Script,
    Turns,
    blocking_turn,
    events_until,
    fast,
    label,
    persist_assistant,
    running_worker,
    set_columns,
    text_turn,
    wait_until,
)
from tests.helpers import Api, ApiUser, make_chat

pytestmark = pytest.mark.anyio

CHATS = "/api/experimental/chats"


def wake_driven(settings: Settings) -> Settings:
    """Claims happen only on wake-ups (never on a timer tick), so event orders are exact."""
    return fast(settings, acquire_interval=3600)


def lifecycle(sub: Subscription[ChatWatchEvent]) -> list[ChatWatchEvent]:
    """Watch events about the chat's status (not the background title and summary)."""
    return [e for e in sub.drain() if e.kind in ("status_change", "action_required")]


def watch_labels(sub: Subscription[ChatWatchEvent]) -> list[str]:
    return [f"{e.kind}:{e.chat.status}" for e in lifecycle(sub)]


def labels(events: list[ChatStreamEvent]) -> list[str]:
    return [label(e) for e in events]


async def send(api: Api, user: ApiUser, chat_id: uuid.UUID, text: str, **extra: str) -> None:
    body = {"content": [{"type": "text", "text": text}], **extra}
    r = await api.request("POST", f"{CHATS}/{chat_id}/messages", user, json=body)
    assert r.status_code == 200, r.text


def in_turns(*scripts: Script) -> Script:
    """The n-th turn runs the n-th script."""
    calls: list[int] = []

    async def run(ctx: TurnContext) -> TurnOutcome:
        calls.append(1)
        return await scripts[len(calls) - 1](ctx)

    return run


async def test_a_normal_text_turn(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    await set_columns(db, chat_id, status="waiting")
    async with running_worker(db, hub, wake_driven(settings), Turns(text_turn("hi there"))):
        with hub.chat(chat_id) as sub, hub.owner(admin.id) as watch:
            await send(api, admin, chat_id, "hello")
            events = await events_until(sub, "status:waiting")
            assert labels(events) == [
                "message:user",
                "status:pending",
                "status:running",
                "part:assistant:text",
                "part:assistant:text",
                "message:assistant",
                "status:waiting",
            ]
            assert watch_labels(watch) == ["status_change:pending", "status_change:waiting"]


async def test_c_interrupted_turn_publishes_waiting_once(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()
    with hub.chat(chat_id) as sub, hub.owner(admin.id) as watch:
        turns = Turns(blocking_turn("par", entered=entered))
        async with running_worker(db, hub, wake_driven(settings), turns) as worker:
            await entered.wait()
            r = await api.request("POST", f"{CHATS}/{chat_id}/interrupt", admin)
            assert r.status_code == 200
            events = await events_until(sub, "message:assistant")

            async def idle() -> bool:
                return not worker.running_chats

            await wait_until(idle)
        assert labels(events) == [
            "status:running",
            "part:assistant:text",
            "status:waiting",
            "message:assistant",
        ]
        assert sub.drain() == []  # the finishing transaction changed nothing to announce
        assert watch_labels(watch) == ["status_change:waiting"]


async def test_c_busy_interrupt_promotes_the_new_message(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()
    turns = Turns(in_turns(blocking_turn("par", entered=entered), text_turn("ok")))
    with hub.chat(chat_id) as sub:
        async with running_worker(db, hub, wake_driven(settings), turns):
            await entered.wait()
            await send(api, admin, chat_id, "stop, do this", busy_behavior="interrupt")
            events = await events_until(sub, "status:waiting", count=2)
    assert labels(events) == [
        "status:running",
        "part:assistant:text",
        "queue:1",
        "status:waiting",
        "message:assistant",
        "message:user",
        "queue:0",
        "status:pending",
        "status:running",
        "part:assistant:text",
        "part:assistant:text",
        "message:assistant",
        "status:waiting",
    ]


async def test_d_failed_turn_with_a_retry(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    part = ChatMessagePart(type=ChatMessagePartType.text, text="x")

    async def failing(ctx: TurnContext) -> TurnOutcome:
        ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.assistant, part)
        retry = ChatStreamRetry(
            attempt=1,
            delay_ms=1000,
            error="The model is overloaded.",
            kind=ChatErrorKind.overloaded,
            retrying_at=ctx.db.now(),
        )
        ctx.hub.publish_retry(ctx.chat_id, retry)
        ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.assistant, part)
        error = ClassifiedError(
            kind=ChatErrorKind.rate_limit, retryable=True, message="Rate limited.", status_code=429
        )
        return TurnOutcome(kind=OutcomeKind.error, error=error)

    with hub.chat(chat_id) as sub, hub.owner(admin.id) as watch:
        async with running_worker(db, hub, wake_driven(settings), Turns(failing)):
            events = await events_until(sub, "status:error")
        assert labels(events) == [
            "status:running",
            "part:assistant:text",
            "retry",
            "part:assistant:text",
            "error",
            "status:error",
        ]
        error = events[-2].error
        assert error is not None
        assert (error.kind, error.retryable, error.status_code) == ("rate_limit", True, 429)
        assert watch_labels(watch) == ["status_change:error"]
    assert hub.turn_snapshot(chat_id) == (None, [])  # the turn buffer is gone


async def test_e_requires_action_turn(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    await set_columns(db, chat_id, dynamic_tools=[{"name": "my_tool", "input_schema": {}}])
    call = ChatMessagePart(
        type=ChatMessagePartType.tool_call,
        tool_call_id="call-1",
        tool_name="my_tool",
        args={"path": "a.txt"},
    )

    async def asks_client(ctx: TurnContext) -> TurnOutcome:
        ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.assistant, call)
        async with ctx.db.write() as conn:
            message = await insert_message(
                conn,
                now=ctx.db.now(),
                chat_id=ctx.chat_id,
                role="assistant",
                content=parts_json([call]),
                model_config_id=model,
            )
            outbox = Outbox(stream=[message_event(message)])
            await stream_log.seal(conn, outbox, ctx.db.now())
        ctx.hub.publish(outbox)
        pending = ToolCallContent(id="call-1", name="my_tool", args_json='{"path":"a.txt"}')
        return TurnOutcome(kind=OutcomeKind.requires_action, tool_calls=[pending])

    with hub.chat(chat_id) as sub, hub.owner(admin.id) as watch:
        async with running_worker(db, hub, wake_driven(settings), Turns(asks_client)):
            events = await events_until(sub, "action_required")
        assert labels(events) == [
            "status:running",
            "part:assistant:tool-call",
            "message:assistant",
            "status:requires_action",
            "action_required",
        ]
        action = events[-1].action_required
        assert action is not None
        assert action.tool_calls[0].args == '{"path":"a.txt"}'
        watched = lifecycle(watch)
        assert [e.kind for e in watched] == ["status_change", "action_required"]
        assert watched[1].tool_calls == action.tool_calls


async def test_f_message_sent_while_busy_is_queued_then_promoted(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    gate, entered = asyncio.Event(), asyncio.Event()

    async def gated(ctx: TurnContext) -> TurnOutcome:
        entered.set()
        await gate.wait()
        await persist_assistant(ctx, "one")
        return TurnOutcome(kind=OutcomeKind.done)

    turns = Turns(in_turns(gated, text_turn("two")))
    with hub.chat(chat_id) as sub, hub.owner(admin.id) as watch:
        async with running_worker(db, hub, wake_driven(settings), turns):
            await entered.wait()
            await send(api, admin, chat_id, "next please")
            gate.set()
            events = await events_until(sub, "status:waiting")
        assert labels(events) == [
            "status:running",
            "queue:1",
            "message:assistant",
            "message:user",
            "queue:0",
            "status:pending",
            "status:running",
            "part:assistant:text",
            "part:assistant:text",
            "message:assistant",
            "status:waiting",
        ]
        promoted = events[3].message
        assert promoted is not None and promoted.created_by == admin.id
        assert watch_labels(watch) == ["status_change:pending", "status_change:waiting"]
