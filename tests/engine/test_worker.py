"""The worker: claims, wake-ups, the control channel, heartbeats, recovery, shutdown (§4, §5.1)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import anyio
import pytest

from chatd.engine.types import StopReason, TurnContext
from chatd.engine.worker import Worker
from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatStatus
from chatd.settings import Settings
from chatd.store import stream_log, worker_state
from chatd.store.chat_state import NewUserMessage, SendOptions, send_message
from chatd.store.chats import lock_chat
from chatd.store.db import Database
from chatd.store.messages import visible_messages
from chatd.store.tables import chats
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.worker_support import (
    Turns,
    blocked_on_a_lock,
    blocking_turn,
    chat_row,
    done,
    fast,
    running_worker,
    set_columns,
    text_part,
    text_turn,
    wait_status,
    wait_until,
)
from tests.helpers import Api, ApiUser, make_chat
from tests.store.test_worker_state import action_chat, ago

pytestmark = pytest.mark.anyio

CHATS = "/api/experimental/chats"


async def texts(db: Database, chat_id: uuid.UUID) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await visible_messages(conn, chat_id)
    return [(m.role, "".join(p.text or "" for p in m.content or [])) for m in rows]


async def interrupt_and_wait(api: Api, user: ApiUser, chat_id: uuid.UUID, worker: Worker) -> None:
    """Interrupt through the API; wait until the worker let go of the chat."""
    r = await api.request("POST", f"{CHATS}/{chat_id}/interrupt", user)
    assert r.status_code == 200 and r.json()["status"] == "waiting"

    async def idle() -> bool:
        return not worker.running_chats

    await wait_until(idle)


async def test_runs_a_pending_chat_once_then_waits(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model, "hello there")
    turns = Turns(text_turn("hi!"))
    async with running_worker(db, hub, fast(settings), turns) as worker:
        row = await wait_status(db, chat_id, "waiting")

        async def idle() -> bool:  # the worker lets go of the chat just after its commit
            return worker.running_chats == set()

        await wait_until(idle)
    assert turns.started == [chat_id]
    assert (row["worker_id"], row["started_at"], row["heartbeat_at"]) == (None, None, None)
    assert await texts(db, chat_id) == [("user", "hello there"), ("assistant", "hi!")]


async def test_two_workers_run_every_chat_exactly_once(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    """Two replicas (own connections, own hubs) share one database."""
    ids = [await make_chat(db, admin, model, f"chat {i}") for i in range(16)]
    started: list[uuid.UUID] = []

    async def yielding(ctx: TurnContext) -> TurnOutcome:
        started.append(ctx.chat_id)
        await asyncio.sleep(0)
        return await done()

    other_db = Database(db.url, secrets=db.secrets)
    settings = fast(settings, max_chats_per_acquire=3)
    try:
        async with (
            running_worker(db, hub, settings, Turns(yielding)),
            running_worker(other_db, EventHub(), settings, Turns(yielding)),
        ):
            for chat_id in ids:
                await wait_status(db, chat_id, "waiting")
    finally:
        await other_db.close()
    assert sorted(started) == sorted(ids)


async def test_create_and_send_wake_the_worker_without_waiting_for_the_interval(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    turns = Turns()
    sleepy = fast(settings, acquire_interval=3600)
    async with running_worker(db, hub, sleepy, turns):
        r = await api.request(
            "POST",
            CHATS,
            admin,
            json={"organization_id": str(admin.org_id), "content": [{"type": "text", "text": "a"}]},
        )
        assert r.status_code == 201, r.text
        chat_id = uuid.UUID(r.json()["id"])
        await wait_status(db, chat_id, "waiting")
        assert turns.started == [chat_id]
        r = await api.request(
            "POST",
            f"{CHATS}/{chat_id}/messages",
            admin,
            json={"content": [{"type": "text", "text": "again"}]},
        )
        assert r.status_code == 200, r.text

        async def ran_twice() -> bool:
            return len(turns.started) == 2

        await wait_until(ran_twice)
        await wait_status(db, chat_id, "waiting")


async def test_interrupt_stops_the_turn_and_keeps_the_partial_message(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()
    turns = Turns(blocking_turn("half an ans", entered=entered))
    async with running_worker(db, hub, fast(settings), turns) as worker:
        await entered.wait()
        await interrupt_and_wait(api, admin, chat_id, worker)
    assert turns.contexts[chat_id].stop_reason == StopReason.interrupted
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"]) == ("waiting", None)
    assert (await texts(db, chat_id))[-1] == ("assistant", "half an ans")


async def test_a_status_written_before_the_claim_but_announced_after_it_does_not_stop_the_turn(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    """A send commits (chat -> pending) and the worker claims the chat before the send's
    ``pending`` is published: that late announcement must not stop the fresh turn."""
    chat_id = await make_chat(db, admin, model)
    await set_columns(db, chat_id, status="waiting")
    entered = asyncio.Event()
    turns = Turns(blocking_turn("still going", entered=entered))
    async with running_worker(db, hub, fast(settings, acquire_interval=3600), turns) as worker:
        async with db.write() as conn:
            new = NewUserMessage(author_id=admin.id, content=[text_part("again")])
            _, late = await send_message(conn, db.now(), chat_id, new, SendOptions())
            await stream_log.seal(conn, late, db.now())
        hub.worker_wakeup.set()  # the claim comes from the worker's own tick, not the send
        await entered.wait()
        assert [e.status.status for e in late.stream if e.status] == [ChatStatus.pending]
        hub.publish(late)
        assert turns.contexts[chat_id].stop_reason is None
        assert worker.running_chats == {chat_id}

        # A status written after the claim stops it as before.
        await interrupt_and_wait(api, admin, chat_id, worker)
    assert turns.contexts[chat_id].stop_reason == StopReason.interrupted
    assert (await texts(db, chat_id))[-2:] == [("user", "again"), ("assistant", "still going")]


async def test_edit_during_the_turn_wins_and_the_chat_runs_again(
    db: Database, hub: EventHub, settings: Settings, api: Api, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model, "first")
    entered = asyncio.Event()
    block = blocking_turn("stale output", entered=entered)

    async def script(ctx: TurnContext) -> TurnOutcome:
        if len(turns.started) == 1:
            return await block(ctx)
        return await text_turn("fresh")(ctx)

    turns = Turns(script)
    async with running_worker(db, hub, fast(settings), turns):
        await entered.wait()
        message_id = next(
            m["id"]
            for m in (await api.request("GET", f"{CHATS}/{chat_id}/messages", admin)).json()[
                "messages"
            ]
            if m["role"] == "user"
        )
        r = await api.request(
            "PATCH",
            f"{CHATS}/{chat_id}/messages/{message_id}",
            admin,
            json={"content": [{"type": "text", "text": "edited"}]},
        )
        assert r.status_code == 200, r.text

        async def reran() -> bool:
            return len(turns.started) == 2 and (await chat_row(db, chat_id))["status"] == "waiting"

        await wait_until(reran)
    assert turns.started == [chat_id, chat_id]
    assert await texts(db, chat_id) == [("user", "edited"), ("assistant", "fresh")]


async def test_an_unexpected_exception_fails_the_chat(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)

    async def boom(ctx: TurnContext) -> TurnOutcome:
        raise RuntimeError("boom")

    async with running_worker(db, hub, fast(settings), Turns(boom)):
        row = await wait_status(db, chat_id, "error")
    assert row["last_error"] == {
        "message": "chat processing failed: boom",
        "kind": "generic",
        "retryable": False,
    }


async def test_lost_heartbeat_stops_the_turn_and_leaves_the_new_owner_alone(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()
    turns = Turns(blocking_turn(entered=entered))
    other = uuid.uuid4()
    async with running_worker(db, hub, fast(settings), turns) as worker:
        await entered.wait()
        await set_columns(db, chat_id, worker_id=other)  # taken over; no event published

        async def stopped() -> bool:
            return not worker.running_chats

        await wait_until(stopped)
    assert turns.contexts[chat_id].stop_reason == StopReason.interrupted
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"]) == ("running", other)


async def test_a_late_heartbeat_answer_leaves_the_chats_next_turn_alone(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    """The heartbeat asks about the turn it saw; by the time the answer (not running any
    more) comes back, that turn has ended and the chat been claimed again. The new turn is
    not the one the answer was about. (White-box: the worker's loops are not started.)"""
    chat_id = await make_chat(db, admin, model)
    worker = Worker(db, hub, settings, run_turn=Turns())
    async with db.write() as conn:
        (row,) = await worker_state.acquire_chats(conn, db.now(), worker.worker_id, 1)
        running = (await worker_state.announce_claims(conn, db.now(), [row])).logged[0]
    first = worker._register(row, running)
    worker._running[chat_id].committed = True  # as _acquire_once marks it after its commit
    async with db.write() as conn:  # the heartbeat waits for this transaction's lock
        await lock_chat(conn, chat_id)
        beat = asyncio.create_task(worker._heartbeat_once())
        await blocked_on_a_lock(db, beat)
        # The first turn ends (interrupted) and the chat is claimed again.
        await conn.execute(
            chats.update().where(chats.c.id == chat_id).values(status="waiting", worker_id=None)
        )
        worker._running.pop(chat_id)
        second = worker._register(dict(row), running)
    await beat
    assert second.stop_reason is None
    assert first.stop_reason is None  # no longer registered: nothing to stop


async def test_a_heartbeat_beside_an_uncommitted_claim_leaves_the_turn_alone(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    """A claim registers its turns before it commits. A heartbeat meanwhile would read the
    chat as it was before the claim (pending, on PostgreSQL) and stop the new turn; it asks
    only about committed claims. (White-box: the worker's loops are not started.)"""
    chat_id = await make_chat(db, admin, model)
    worker = Worker(db, hub, settings, run_turn=Turns())
    async with db.write() as conn:
        (row,) = await worker_state.acquire_chats(conn, db.now(), worker.worker_id, 1)
        announced = await worker_state.announce_claims(conn, db.now(), [row])
        claimed = worker._register(row, announced.logged[0])
        beat = asyncio.create_task(worker._heartbeat_once())
        await asyncio.wait({beat}, timeout=5)  # SQLite: it waits for this transaction
    await beat
    assert claimed.stop_reason is None
    worker._running[chat_id].committed = True
    await worker._heartbeat_once()  # once committed, it is asked about, and still runs here
    assert claimed.stop_reason is None


async def test_a_wake_up_that_claimed_nothing_looks_again_soon(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    """On PostgreSQL the claim skips a row locked at that instant (SKIP LOCKED). After a
    wake-up that claimed nothing, the worker looks again soon, not at its next poll (an hour
    here)."""
    if db.is_sqlite:
        pytest.skip("SQLite's claim waits for the writer lock: it skips nothing")
    chat_id = await make_chat(db, admin, model)  # pending
    entered = asyncio.Event()
    turns = Turns(blocking_turn(entered=entered))
    claims: list[str] = []

    def record(sql: str) -> None:
        if "SKIP LOCKED" in sql:
            claims.append(sql)

    async def claimed_twice() -> bool:
        return len(claims) >= 2  # the first claim (the wake-up's) has come back

    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(db.observe(record))
        async with db.write() as conn:
            await lock_chat(conn, chat_id)  # held while the worker starts and is woken
            hub.worker_wakeup.set()
            worker = await stack.enter_async_context(
                running_worker(db, hub, fast(settings, acquire_interval=3600), turns)
            )
            await wait_until(claimed_twice)  # the claims skipped the locked row
            assert worker.running_chats == set()
        with anyio.fail_after(5):
            await entered.wait()
    assert turns.started == [chat_id]


async def test_stale_running_chat_is_recovered_and_run_here(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    dead = uuid.uuid4()
    chat_id = await make_chat(db, admin, model)
    await set_columns(db, chat_id, status="running", worker_id=dead, heartbeat_at=ago(600))
    fresh_id = await make_chat(db, admin, model)
    await set_columns(db, fresh_id, status="running", worker_id=dead, heartbeat_at=ago(1))
    turns = Turns()
    async with running_worker(db, hub, fast(settings), turns):
        await wait_status(db, chat_id, "waiting")
    assert turns.started == [chat_id]
    assert (await chat_row(db, fresh_id))["worker_id"] == dead


async def test_stale_requires_action_times_out_into_error(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await action_chat(db, admin, model)
    async with running_worker(db, hub, fast(settings, stale_after=0.2), Turns()):
        await set_columns(db, chat_id, status="requires_action", updated_at=ago(0))
        row = await wait_status(db, chat_id, "error")  # found by the periodic recovery
    assert row["last_error"]["message"] == "Dynamic tool execution timed out"
    role, _ = (await texts(db, chat_id))[-1]
    assert role == "tool"


async def test_graceful_shutdown_returns_running_chats_to_pending(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()
    turns = Turns(blocking_turn(entered=entered))
    async with running_worker(db, hub, fast(settings), turns) as worker:
        await entered.wait()
    assert worker.running_chats == set()
    assert turns.contexts[chat_id].stop_reason == StopReason.shutdown
    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"], row["last_error"]) == ("pending", None, None)
    assert [role for role, _ in await texts(db, chat_id)] == ["user"]


async def test_a_turn_that_succeeds_after_shutdown_began_goes_back_to_pending(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()

    async def finishes_anyway(ctx: TurnContext) -> TurnOutcome:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()
        return TurnOutcome(kind=OutcomeKind.done)

    async with running_worker(db, hub, fast(settings), Turns(finishes_anyway)):
        await entered.wait()
    assert (await chat_row(db, chat_id))["status"] == "pending"


async def test_a_turn_that_ignores_cancellation_still_gets_finished(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    """A turn that lets CancelledError escape is treated as stopped for the stop reason."""
    chat_id = await make_chat(db, admin, model)
    entered = asyncio.Event()

    async def careless(ctx: TurnContext) -> TurnOutcome:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with running_worker(db, hub, fast(settings), Turns(careless)):
        await entered.wait()
    assert (await chat_row(db, chat_id))["status"] == "pending"
