"""The worker's transactions: claims, heartbeats, the finishing guards (§3-4); stale recovery is
tests/store/test_recovery.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa

from chatd.events.hub import EventHub
from chatd.llm.types import ClassifiedError, ToolCallContent
from chatd.sdk.chats import (
    ChatErrorKind,
    ChatMessagePart,
    ChatMessagePartType,
    parts_json,
)
from chatd.settings import Settings
from chatd.store import stream_log
from chatd.store import worker_state as ws
from chatd.store.chats import get_chat, lock_chat
from chatd.store.db import Database
from chatd.store.messages import insert_message, insert_queued
from chatd.store.outbox import Outbox
from chatd.store.tables import chat_messages, chat_queued_messages
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.worker_support import (
    blocked_on_a_lock,
    chat_row,
    label,
    queue_message,
    set_columns,
)
from tests.helpers import ApiUser, bootstrap_admin, make_chat, seed_model_config

pytestmark = pytest.mark.anyio

ME = uuid.uuid4()
OTHER = uuid.uuid4()


@pytest.fixture
async def owner(db: Database, settings: Settings) -> ApiUser:
    return await bootstrap_admin(db, settings)


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


async def oldest_first(
    db: Database, owner: ApiUser, model: uuid.UUID, count: int
) -> list[uuid.UUID]:
    """``count`` pending chats, each updated a second after the one before."""
    ids = [await make_chat(db, owner, model, f"chat {i}") for i in range(count)]
    for i, chat_id in enumerate(ids):
        await set_columns(db, chat_id, updated_at=ago(100 - i))
    return ids


async def claim(db: Database, limit: int = 10, worker: uuid.UUID = ME) -> list[uuid.UUID]:
    async with db.write() as conn:
        rows = await ws.acquire_chats(conn, db.now(), worker, limit)
    return [row["id"] for row in rows]


Finish = Callable[[Database, uuid.UUID, TurnOutcome], Awaitable[ws.Finished]]


@pytest.fixture(params=["worker", "transaction"])
def finish(request: pytest.FixtureRequest) -> Finish:
    """Finish a turn as the worker does (the one-statement case first), or by the finishing
    transaction alone: its guards must hold for every case either way."""

    async def run(db: Database, chat_id: uuid.UUID, outcome: TurnOutcome) -> ws.Finished:
        if request.param == "worker":
            return await ws.finish(db, db.now(), chat_id, ME, outcome)
        async with db.write() as conn:
            finished = await ws.finish_turn(conn, db.now(), chat_id, ME, outcome)
            await stream_log.seal(conn, finished.outbox, db.now())
            return finished

    return run


def labels(outbox: Outbox) -> list[str]:
    return [label(e) for e in outbox.stream]


def watch_kinds(outbox: Outbox) -> list[str]:
    return [f"{e.kind}:{e.chat.status}" for _, e in outbox.watch]


async def action_chat(db: Database, owner: ApiUser, model: uuid.UUID) -> uuid.UUID:
    """A chat whose last assistant message called the client-side tool ``my_tool``."""
    chat_id = await make_chat(db, owner, model)
    await set_columns(
        db, chat_id, dynamic_tools=[{"name": "my_tool", "input_schema": {"type": "object"}}]
    )
    call = ChatMessagePart(
        type=ChatMessagePartType.tool_call, tool_call_id="call-1", tool_name="my_tool", args={}
    )
    async with db.write() as conn:
        await insert_message(
            conn, now=db.now(), chat_id=chat_id, role="assistant", content=parts_json([call])
        )
    return chat_id


# ---- claims ------------------------------------------------------------------------------------


async def test_claims_oldest_pending_first_and_skips_archived_and_idle(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    ids = await oldest_first(db, owner, model, 4)
    await set_columns(db, ids[0], archived=True)
    await set_columns(db, ids[1], status="waiting")

    async with db.write() as conn:
        (claimed,) = await ws.acquire_chats(conn, db.now(), ME, 1)
    row = await chat_row(db, ids[2])
    assert (row["id"], row["status"], row["worker_id"]) == (ids[2], "running", ME)
    assert row["started_at"] == row["heartbeat_at"] == row["updated_at"]
    # The claim hands back the row as committed, with the owner fields a Chat needs.
    assert {k: claimed[k] for k in row.keys()} == dict(row)
    assert claimed["owner_username"] == owner.username and "owner_name" in claimed
    assert await claim(db) == [ids[3]]
    assert await claim(db) == []


async def test_concurrent_claims_take_each_chat_exactly_once(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    ids = {await make_chat(db, owner, model, f"chat {i}") for i in range(12)}
    workers = [uuid.uuid4() for _ in range(6)]
    results = await asyncio.gather(*(claim(db, 3, w) for w in workers for _ in range(2)))
    claimed = [chat_id for batch in results for chat_id in batch]
    assert sorted(claimed) == sorted(ids)
    for batch, worker in zip(results, [w for w in workers for _ in range(2)], strict=True):
        for chat_id in batch:
            assert (await chat_row(db, chat_id))["worker_id"] == worker


async def test_a_claim_skips_the_excluded_chats_whatever_the_lists_length(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    ids = await oldest_first(db, owner, model, 6)
    finishing = ids[:3]

    async with db.write() as conn:
        rows = await ws.acquire_chats(conn, db.now(), ME, 10, exclude=finishing)
    assert sorted(row["id"] for row in rows) == sorted(ids[3:])  # RETURNING has no order
    async with db.write() as conn:
        more = [*finishing, uuid.uuid4(), uuid.uuid4()]
        assert await ws.acquire_chats(conn, db.now(), ME, 10, exclude=more) == []
    assert [await claim(db, 1) for _ in range(3)] == [[ids[0]], [ids[1]], [ids[2]]]


async def test_claims_and_heartbeats_send_few_statement_shapes(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """Lists of 1 to 8 ids go out as one statement text (one prepared statement per
    connection on PostgreSQL), not one per length."""
    sent: list[str] = []

    with db.observe(sent.append):
        for n in range(1, 9):
            ids = [uuid.uuid4() for _ in range(n)]
            async with db.write() as conn:
                await ws.acquire_chats(conn, db.now(), ME, 10, exclude=ids)
                await ws.heartbeat(conn, db.now(), ME, ids)
    claims = {s for s in sent if "LIMIT" in s}
    heartbeats = {s for s in sent if "heartbeat_at" in s and "LIMIT" not in s}
    assert len(claims) == 1 and len(heartbeats) == 1


async def test_heartbeat_returns_only_chats_still_owned_and_running(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    a, b, c = [await make_chat(db, owner, model) for _ in range(3)]
    await claim(db)
    await set_columns(db, b, status="waiting", worker_id=None)
    await set_columns(db, c, worker_id=OTHER)
    later = db.now() + dt.timedelta(seconds=5)
    async with db.write() as conn:
        assert await ws.heartbeat(conn, later, ME, {a, b, c}) == {a}
    assert (await chat_row(db, a))["heartbeat_at"] == later
    assert (await chat_row(db, c))["heartbeat_at"] != later


async def test_release_to_pending_gives_back_only_own_running_claims(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    a, b = [await make_chat(db, owner, model) for _ in range(2)]
    await claim(db)
    await set_columns(db, b, worker_id=OTHER)
    async with db.write() as conn:
        released, outbox = await ws.release_to_pending(conn, db.now(), [a, b], ME)
    assert released == {a}
    assert labels(outbox) == ["status:pending"] and outbox.logged[0].chat_id == a
    row = await chat_row(db, a)
    assert (row["status"], row["worker_id"], row["heartbeat_at"]) == ("pending", None, None)
    assert (await chat_row(db, b))["status"] == "running"


# ---- the finishing transaction -----------------------------------------------------------------


async def test_done_turn_waits_and_publishes_status_then_watch(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.done))
    assert finished.status == "waiting"
    assert labels(finished.outbox) == ["status:waiting"]
    assert watch_kinds(finished.outbox) == ["status_change:waiting"]
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"], row["started_at"]) == ("waiting", None, None)
    # The announced chat is the row as written (from the UPDATE's RETURNING), owner included.
    ((_, announced),) = finished.outbox.watch
    async with db.read() as conn:
        assert announced.chat == await get_chat(conn, chat_id)
    assert announced.chat.owner_username == owner.username


async def test_taken_over_chat_is_left_alone(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await make_chat(db, owner, model)
    await claim(db, worker=OTHER)
    before = await chat_row(db, chat_id)
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.done))
    assert finished.status is None and finished.outbox == Outbox(sealed=True)
    assert await chat_row(db, chat_id) == before


async def test_pending_wins_over_the_finishing_turn(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    """An edit while running made the chat pending: it stays pending, silently."""
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    await set_columns(db, chat_id, status="pending")
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.interrupted))
    assert finished.status == "pending" and finished.outbox == Outbox(sealed=True)
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"], row["heartbeat_at"]) == ("pending", None, None)


async def test_interrupted_chat_stays_waiting_without_a_second_status(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    await set_columns(db, chat_id, status="waiting")
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.done))
    assert finished.status == "waiting" and finished.outbox == Outbox(sealed=True)
    assert (await chat_row(db, chat_id))["worker_id"] is None


async def test_queue_head_is_promoted_as_the_owners_message(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    await queue_message(db, chat_id, "first queued")
    await queue_message(db, chat_id, "second queued")
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.done))
    assert finished.status == "pending"
    assert labels(finished.outbox) == ["message:user", "queue:1", "status:pending"]
    assert watch_kinds(finished.outbox) == ["status_change:pending"]
    assert finished.outbox.wake_workers
    promoted = finished.outbox.stream[0].message
    assert promoted is not None and promoted.content is not None
    assert promoted.content[0].text == "first queued"
    assert (promoted.created_by, promoted.model_config_id) == (owner.id, model)
    assert (await chat_row(db, chat_id))["status"] == "pending"


async def test_interrupt_with_queue_promotes_but_archived_does_not(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    kept, archived = [await make_chat(db, owner, model) for _ in range(2)]
    await claim(db)
    for chat_id in (kept, archived):
        await queue_message(db, chat_id, "next")
        await set_columns(db, chat_id, status="waiting")
    await set_columns(db, archived, archived=True)
    interrupted = TurnOutcome(kind=OutcomeKind.interrupted)
    assert (await finish(db, kept, interrupted)).status == "pending"
    finished = await finish(db, archived, interrupted)
    assert finished.status == "waiting" and finished.outbox == Outbox(sealed=True)
    async with db.read() as conn:
        left = (
            await conn.execute(sa.select(sa.func.count()).select_from(chat_queued_messages))
        ).scalar_one()
    assert left == 1


async def test_error_outcome_stores_last_error_and_publishes_error_before_status(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    error = ClassifiedError(
        kind=ChatErrorKind.auth,
        retryable=False,
        message="The API key was rejected.",
        detail="401 invalid key",
        provider="openai",
        status_code=401,
    )
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.error, error=error))
    assert finished.status == "error"
    assert labels(finished.outbox) == ["error", "status:error"]
    payload = finished.outbox.stream[0].error
    assert payload is not None and payload.kind == "auth" and payload.status_code == 401
    row = await chat_row(db, chat_id)
    assert row["last_error"] == {
        "message": "The API key was rejected.",
        "detail": "401 invalid key",
        "kind": "auth",
        "provider": "openai",
        "retryable": False,
        "status_code": 401,
    }
    watch = finished.outbox.watch[0][1]
    assert watch.chat.last_error is not None and watch.chat.last_error.kind == "auth"


async def test_requires_action_publishes_status_then_action_required(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await action_chat(db, owner, model)
    await claim(db)
    call = ToolCallContent(id="call-1", name="my_tool", args_json='{"x": 1}')
    outcome = TurnOutcome(kind=OutcomeKind.requires_action, tool_calls=[call])
    finished = await finish(db, chat_id, outcome)
    assert finished.status == "requires_action"
    assert labels(finished.outbox) == ["status:requires_action", "action_required"]
    action = finished.outbox.stream[1].action_required
    assert action is not None
    assert [c.model_dump() for c in action.tool_calls] == [
        {"tool_call_id": "call-1", "tool_name": "my_tool", "args": '{"x": 1}'}
    ]
    assert watch_kinds(finished.outbox) == [
        "status_change:requires_action",
        "action_required:requires_action",
    ]
    assert finished.outbox.watch[1][1].tool_calls == action.tool_calls
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"]) == ("requires_action", None)


async def test_shutdown_outcome_returns_the_chat_to_pending(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    await queue_message(db, chat_id, "queued")
    finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.shutdown))
    assert finished.status == "pending"
    assert labels(finished.outbox) == ["status:pending"]  # the queue is not promoted
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"], row["last_error"]) == ("pending", None, None)
    async with db.read() as conn:
        users_messages = (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    chat_messages.c.chat_id == chat_id, chat_messages.c.role == "user"
                )
            )
        ).scalar_one()
    assert users_messages == 1


async def test_a_finish_published_after_a_newer_claim_reaches_clients_in_commit_order(
    db: Database, owner: ApiUser, model: uuid.UUID, finish: Finish
) -> None:
    """§3.2 step 5: the chat moved on (claimed again) and that was published before the
    finish's own events; clients still get them in the order they were committed, ending on
    the newer status."""
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    await queue_message(db, chat_id, "queued")
    hub = EventHub(db)
    with hub.chat(chat_id) as stream, hub.owner(owner.id) as watch:
        await hub.prepare(chat_id)
        finished = await finish(db, chat_id, TurnOutcome(kind=OutcomeKind.done))
        assert finished.status == "pending" and finished.outbox.sealed
        assert labels(finished.outbox) == ["message:user", "queue:0", "status:pending"]
        assert watch_kinds(finished.outbox) == ["status_change:pending"]
        async with db.write() as conn:
            rows = await ws.acquire_chats(conn, db.now(), OTHER, 1)
            running = await ws.announce_claims(conn, db.now(), rows)
        hub.publish(running)  # published first, committed second: it waits for the finish
        assert stream.drain() == []
        hub.publish(finished.outbox)
        streamed = [label(event) for event in stream.drain()]
        watched = [f"{e.kind}:{e.chat.status}" for e in watch.drain()]
    assert streamed == ["message:user", "queue:0", "status:pending", "status:running"]
    assert watched == ["status_change:pending"]


# ---- the one-statement finish --------------------------------------------------------------


async def finish_running(
    db: Database, chat_id: uuid.UUID, outcome: TurnOutcome
) -> ws.Finished | None:
    async with db.write_one() as conn:
        return await ws.finish_running_turn(conn, db.now(), chat_id, ME, outcome)


async def test_one_statement_finish_leaves_every_other_case_to_the_transaction(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """It writes only a chat still running on this worker, and one with queued messages only
    when the turn does not end waiting (nothing to promote then)."""
    queued, interrupted, taken = [await make_chat(db, owner, model) for _ in range(3)]
    await claim(db)
    await queue_message(db, queued, "next")
    await set_columns(db, interrupted, status="waiting")
    await set_columns(db, taken, worker_id=OTHER)
    before = {c: await chat_row(db, c) for c in (queued, interrupted, taken)}
    done = TurnOutcome(kind=OutcomeKind.done)
    for chat_id in (queued, interrupted, taken):
        assert await finish_running(db, chat_id, done) is None
        assert await chat_row(db, chat_id) == before[chat_id]

    failed = TurnOutcome(kind=OutcomeKind.error, error=None)
    finished = await finish_running(db, queued, failed)
    assert finished is not None and finished.status == "error"
    assert labels(finished.outbox) == ["error", "status:error"]
    row = await chat_row(db, queued)
    assert (row["status"], row["worker_id"], row["queue_length"]) == ("error", None, 1)


async def test_one_statement_finish_sees_the_queue_a_waiting_send_left(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """A send that holds the row lock and queues a message while the finish waits for that
    lock: the finish must not end the turn waiting past the new message (it would never be
    promoted). The transaction then promotes it."""
    chat_id = await make_chat(db, owner, model)
    await claim(db)
    row = await chat_row(db, chat_id)
    done = TurnOutcome(kind=OutcomeKind.done)
    async with db.write() as conn:
        await lock_chat(conn, chat_id)
        await insert_queued(
            conn,
            now=db.now(),
            chat_id=chat_id,
            content=parts_json([ChatMessagePart(type=ChatMessagePartType.text, text="q")]),
            model_config_id=row["last_model_config_id"],
            created_by=owner.id,
        )
        finishing = asyncio.create_task(finish_running(db, chat_id, done))
        await blocked_on_a_lock(db, finishing)
    assert await finishing is None
    assert (await chat_row(db, chat_id))["status"] == "running"
    finished = await ws.finish(db, db.now(), chat_id, ME, done)
    assert finished.status == "pending"
    assert labels(finished.outbox) == ["message:user", "queue:0", "status:pending"]
    assert (await chat_row(db, chat_id))["queue_length"] == 0
