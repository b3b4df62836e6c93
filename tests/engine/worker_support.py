"""Helpers for worker tests: scripted turns, row access, bounded waits, event summaries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import sqlalchemy as sa

from chatd.engine.types import StopReason, TurnContext
from chatd.engine.worker import Worker
from chatd.events.delivery import Subscription
from chatd.events.hub import EventHub
from chatd.llm.types import ClassifiedError, Generated, ModelRequest, ProviderError, StreamPart
from chatd.sdk.chats import (
    ChatErrorKind,
    ChatMessage,
    ChatMessagePart,
    ChatMessagePartType,
    ChatMessageRole,
    parts_json,
)
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType
from chatd.settings import Settings
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.messages import insert_message, insert_queued
from chatd.store.outbox import Outbox
from chatd.store.tables import chats
from chatd.store.transition_steps import message_event
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome

Script = Callable[[TurnContext], Awaitable[TurnOutcome]]
WAIT = 10.0


def fast(settings: Settings, **overrides: Any) -> Settings:
    """Engine intervals short enough that no test waits on them."""
    values: dict[str, Any] = {
        "acquire_interval": 0.02,
        "heartbeat_interval": 0.02,
        "stale_recovery_interval": 0.05,
        "stale_after": 300.0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def text_part(text: str) -> ChatMessagePart:
    return ChatMessagePart(type=ChatMessagePartType.text, text=text)


class Turns:
    """A ``run_turn`` for tests: records each turn, then runs ``script`` (default: done)."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or (lambda ctx: done())
        self.started: list[uuid.UUID] = []
        self.contexts: dict[uuid.UUID, TurnContext] = {}

    async def __call__(self, ctx: TurnContext) -> TurnOutcome:
        self.started.append(ctx.chat_id)
        self.contexts[ctx.chat_id] = ctx
        return await self.script(ctx)


async def done() -> TurnOutcome:
    return TurnOutcome(kind=OutcomeKind.done)


async def persist_assistant(ctx: TurnContext, text: str) -> ChatMessage:
    """Store an assistant message and publish it, as a step persistence would."""
    async with ctx.db.write() as conn:
        row = await conn.execute(
            sa.select(chats.c.last_model_config_id).where(chats.c.id == ctx.chat_id)
        )
        model_id = row.scalar_one()
        message = await insert_message(
            conn,
            now=ctx.db.now(),
            chat_id=ctx.chat_id,
            role="assistant",
            content=parts_json([text_part(text)]),
            model_config_id=model_id,
        )
        outbox = await stream_log.seal(conn, Outbox(stream=[message_event(message)]), ctx.db.now())
    ctx.hub.publish(outbox)
    return message


def text_turn(text: str = "hello back") -> Script:
    """Stream ``text`` in two deltas, persist it, finish normally."""

    async def run(ctx: TurnContext) -> TurnOutcome:
        half = len(text) // 2
        for delta in (text[:half], text[half:]):
            ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.assistant, text_part(delta))
        await persist_assistant(ctx, text)
        return await done()

    return run


def blocking_turn(partial: str = "partial", *, entered: asyncio.Event | None = None) -> Script:
    """Stream ``partial``, then wait until stopped; persist the partial text and report why."""

    async def run(ctx: TurnContext) -> TurnOutcome:
        ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.assistant, text_part(partial))
        if entered is not None:
            entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
        if ctx.stop_reason == StopReason.shutdown:
            return TurnOutcome(kind=OutcomeKind.shutdown)
        # The step persistence guard (§5.7) keeps partial output only after a plain interrupt.
        if (await chat_row(ctx.db, ctx.chat_id))["status"] == "waiting":
            await persist_assistant(ctx, partial)
        return TurnOutcome(kind=OutcomeKind.interrupted)

    return run


class QuietModel:
    """The model behind titles and turn summaries in worker tests: answers at once, offline."""

    provider = "openai"

    async def generate(self, request: ModelRequest) -> Generated:
        return Generated("Quiet answer")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        raise ProviderError(
            ClassifiedError(kind=ChatErrorKind.config, retryable=False, message="no streaming")
        )
        yield  # pragma: no cover - makes this an async generator


def quiet_models(
    *, provider: str, model: str, api_key: str, base_url: str | None = None
) -> QuietModel:
    return QuietModel()


class WatchedSemaphore(asyncio.Semaphore):
    """A semaphore that counts who had to wait for it, and the most places held at once."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.size = value
        self.waited = 0
        self.held = 0
        self.most_held = 0

    async def acquire(self) -> bool:
        if self.locked():
            self.waited += 1
        await super().acquire()
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        return True

    def release(self) -> None:
        self.held -= 1
        super().release()


@asynccontextmanager
async def running_worker(
    db: Database,
    hub: EventHub,
    settings: Settings,
    turns: Turns,
    *,
    start_places: asyncio.Semaphore | None = None,
    summary_places: asyncio.Semaphore | None = None,
    **kwargs: Any,
) -> AsyncIterator[Worker]:
    kwargs.setdefault("client_factory", quiet_models)
    worker = Worker(db, hub, settings, run_turn=turns, **kwargs)
    # The worker's own limits, swapped for watched ones before it claims anything.
    if start_places is not None:
        worker._start_places = start_places
    if summary_places is not None:
        worker._summary_places = summary_places
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


async def chat_row(db: Database, chat_id: uuid.UUID) -> dict[str, Any]:
    async with db.read() as conn:
        return (await conn.execute(sa.select(chats).where(chats.c.id == chat_id))).one().as_dict()


async def set_columns(db: Database, chat_id: uuid.UUID, **values: Any) -> None:
    async with db.write() as conn:
        await conn.execute(chats.update().where(chats.c.id == chat_id).values(**values))


async def queue_message(db: Database, chat_id: uuid.UUID, text: str) -> None:
    row = await chat_row(db, chat_id)
    async with db.write() as conn:
        await insert_queued(
            conn,
            now=db.now(),
            chat_id=chat_id,
            content=parts_json([text_part(text)]),
            model_config_id=row["last_model_config_id"],
            created_by=row["owner_id"],
        )


async def wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` (a database read, usually) until it holds, for at most ``WAIT``."""
    with anyio.fail_after(WAIT):
        while True:
            if await check():
                return
            await asyncio.sleep(0.005)


async def wait_status(db: Database, chat_id: uuid.UUID, *statuses: str) -> dict[str, Any]:
    async def check() -> bool:
        return (await chat_row(db, chat_id))["status"] in statuses

    await wait_until(check)
    return await chat_row(db, chat_id)


async def wait_started(turns: Turns, chat_id: uuid.UUID) -> TurnContext:
    async def check() -> bool:
        return chat_id in turns.contexts

    await wait_until(check)
    return turns.contexts[chat_id]


def label(event: ChatStreamEvent) -> str:
    """A short name for an event: ``status:running``, ``message:assistant``, ``queue:2``."""
    if event.type == ChatStreamEventType.status:
        assert event.status is not None
        return f"status:{event.status.status}"
    if event.type == ChatStreamEventType.message:
        assert event.message is not None
        return f"message:{event.message.role}"
    if event.type == ChatStreamEventType.message_part:
        assert event.message_part is not None
        return f"part:{event.message_part.role}:{event.message_part.part.type}"
    if event.type == ChatStreamEventType.queue_update:
        return f"queue:{len(event.queued_messages or [])}"
    return str(event.type)


async def events_until(
    sub: Subscription[ChatStreamEvent], last: str, *, count: int = 1
) -> list[ChatStreamEvent]:
    """Events up to and including the ``count``-th one labelled ``last``."""
    seen: list[ChatStreamEvent] = []
    try:
        with anyio.fail_after(WAIT):
            while count:
                event = await sub.get()
                assert event is not None, "subscriber lagged"
                seen.append(event)
                if label(event) == last:
                    count -= 1
    except TimeoutError:
        raise AssertionError(f"no {last!r} in time; seen: {[label(e) for e in seen]}") from None
    return seen


async def blocked_on_a_lock(db: Database, task: asyncio.Task[Any]) -> None:
    """Wait until ``task`` waits for a lock: a PostgreSQL row lock, or SQLite's writer lock
    (chatd serialises its own writers in process)."""
    for _ in range(500):
        await asyncio.sleep(0.01)
        assert not task.done()
        if db.is_sqlite:
            return  # the task has reached the in-process writer lock by now
        async with db.read() as conn:
            waiting = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    )
                )
            ).scalar_one()
        if waiting:
            return
    raise AssertionError("the task never waited for a lock")
