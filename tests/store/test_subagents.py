"""A root's turn parked while it waits for its sub-agents (chatd.store.subagents,
worker_state.park_turn): parking, waking by a child or by time, recovery leaving it alone,
and the user's interrupt stopping it; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.settings import Settings
from chatd.store import chat_state, recovery, subagents
from chatd.store import worker_state as ws
from chatd.store.db import Database
from chatd.store.messages import visible_messages
from chatd.store.steps import Step, save_step
from chatd.store.tool_calls import INTERRUPTED_BY_USER
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.worker_support import chat_row, queue_message, set_columns, text_part
from tests.helpers import ApiUser, bootstrap_admin, make_chat, seed_model_config

pytestmark = pytest.mark.anyio

ME = uuid.uuid4()
STALE = 300.0


@pytest.fixture
async def owner(db: Database, settings: Settings) -> ApiUser:
    return await bootstrap_admin(db, settings)


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


async def child_of(db: Database, root: uuid.UUID, owner: ApiUser, model: uuid.UUID) -> uuid.UUID:
    return await make_chat(db, owner, model, "the child's task", parent=root, root=root)


async def claim(db: Database, worker: uuid.UUID = ME) -> set[uuid.UUID]:
    async with db.write() as conn:
        return {r["id"] for r in await ws.acquire_chats(conn, db.now(), worker, 100)}


async def wait_step(db: Database, root: uuid.UUID, model: uuid.UUID, child: uuid.UUID) -> None:
    """The root's step that calls wait_agent, saved without its result (as a turn parks)."""
    call = ChatMessagePart(
        type=ChatMessagePartType.tool_call,
        tool_call_id="wait-1",
        tool_name="wait_agent",
        args={"chat_id": str(child)},
    )
    await save_step(
        db, db.now(), root, ME, Step(model_config_id=model, assistant=[call]), turn_seq=0
    )


async def park(db: Database, root: uuid.UUID, child: uuid.UUID, until: dt.datetime) -> ws.Finished:
    outcome = TurnOutcome(OutcomeKind.awaiting, awaiting_until=until, awaited=[child])
    return await ws.finish(db, db.now(), root, ME, outcome)


async def parked_root(
    db: Database, owner: ApiUser, model: uuid.UUID, *, wait: float = 300
) -> tuple[uuid.UUID, uuid.UUID]:
    """A root whose turn parked on a child that is still working (claimed by another worker)."""
    root = await make_chat(db, owner, model, "the root's task")
    assert await claim(db) == {root}
    child = await child_of(db, root, owner, model)
    assert await claim(db, uuid.uuid4()) == {child}
    await wait_step(db, root, model, child)
    finished = await park(db, root, child, db.now() + dt.timedelta(seconds=wait))
    assert finished.status == "running" and not finished.outbox.stream
    return root, child


async def test_a_parked_root_keeps_running_without_a_worker_until_its_child_settles(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root, child = await parked_root(db, owner, model)
    row = await chat_row(db, root)
    assert (row["status"], row["worker_id"], row["heartbeat_at"]) == ("running", None, None)
    assert subagents.is_parked(row)
    # Neither claimed (it is not pending) nor taken for a chat whose worker died.
    assert await claim(db) == set()
    async with db.write() as conn:
        outbox = await recovery.recover_stale(conn, db.now() + dt.timedelta(hours=1), STALE)
    assert (await chat_row(db, root))["status"] == "pending"  # its wait ran out: woken
    # Silently: its clients still know it as running. (The child, its heartbeat an hour old,
    # is recovered as a dead worker's chat.)
    assert {e.chat_id for e in outbox.stream} == {child}
    assert outbox.wake_workers


async def test_a_child_settling_wakes_its_parked_parent_once(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root, child = await parked_root(db, owner, model)
    async with db.write() as conn:
        assert not await subagents.wake_due(conn, db.now())  # the child still works
        assert not await subagents.wake_parent(conn, db.now(), child)  # not a parked chat
    await set_columns(db, child, status="waiting", worker_id=None)
    async with db.write() as conn:
        assert await subagents.wake_parent(conn, db.now(), root)
        assert not await subagents.wake_parent(conn, db.now(), root)
    row = await chat_row(db, root)
    assert (row["status"], row["awaiting_until"]) == ("pending", None)
    assert await claim(db) == {root}


async def test_recovery_wakes_a_parent_whose_childs_wake_was_lost(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root, child = await parked_root(db, owner, model)
    later = db.now() + dt.timedelta(seconds=5)
    await set_columns(db, child, status="error", worker_id=None, updated_at=later)
    async with db.write() as conn:
        assert await subagents.wake_due(conn, later) == [root]
    assert (await chat_row(db, root))["status"] == "pending"


async def test_a_child_done_before_the_park_sends_the_root_straight_back_to_pending(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root = await make_chat(db, owner, model, "the root's task")
    await claim(db)
    child = await child_of(db, root, owner, model)
    await set_columns(db, child, status="waiting")
    await wait_step(db, root, model, child)
    finished = await park(db, root, child, db.now() + dt.timedelta(minutes=5))
    assert finished.status == "pending" and finished.outbox.wake_workers
    row = await chat_row(db, root)
    assert (row["status"], row["awaiting_until"], row["worker_id"]) == ("pending", None, None)


async def test_a_root_interrupted_before_it_parks_finishes_waiting(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root = await make_chat(db, owner, model, "the root's task")
    await claim(db)
    child = await child_of(db, root, owner, model)
    await wait_step(db, root, model, child)
    async with db.write() as conn:
        await chat_state.interrupt(conn, db.now(), root)
    finished = await park(db, root, child, db.now() + dt.timedelta(minutes=5))
    assert finished.status == "waiting"
    assert not subagents.is_parked(await chat_row(db, root))


async def test_interrupting_a_parked_root_answers_its_wait_and_promotes_its_queue(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root, child = await parked_root(db, owner, model)
    queued = chat_state.NewUserMessage(author_id=owner.id, content=[text_part("and then?")])
    async with db.write() as conn:
        result, _ = await chat_state.send_message(
            conn, db.now(), root, queued, chat_state.SendOptions()
        )
    assert result.queued_message is not None
    async with db.write() as conn:
        chat, outbox = await chat_state.interrupt(conn, db.now(), root)
    assert chat.status == "pending"  # the queue head was promoted, as a finish would
    async with db.read() as conn:
        rows = await visible_messages(conn, root)
    assert [m.role for m in rows][-3:] == ["assistant", "tool", "user"]
    answer = rows[-2].content[0] if rows[-2].content else None
    assert answer is not None and answer.tool_call_id == "wait-1"
    assert answer.result == {"error": INTERRUPTED_BY_USER}
    assert (await chat_row(db, child))["status"] == "running"  # the child is left alone


async def test_the_family_counts_and_a_childs_report(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    root = await make_chat(db, owner, model, "the root's task")
    first, second = [await child_of(db, root, owner, model) for _ in range(2)]
    stranger = await make_chat(db, owner, model, "another root")
    await set_columns(db, second, status="waiting")
    reply = [
        ChatMessagePart(type=ChatMessagePartType.text, text="Found it."),
        ChatMessagePart(type=ChatMessagePartType.text, text="In main.py."),
    ]
    await set_columns(db, second, worker_id=ME, status="running")
    await save_step(
        db, db.now(), second, ME, Step(model_config_id=model, assistant=reply), turn_seq=0
    )
    async with db.read() as conn:
        assert await subagents.live_children(conn, root) == 2
        assert await subagents.child_turns(conn, root) == 2
        assert await subagents.report(conn, second) == "Found it.\n\nIn main.py."
        assert await subagents.report(conn, first) == ""
        assert (await subagents.family_child(conn, root, first)) is not None
        assert await subagents.family_child(conn, root, stranger) is None
        assert await subagents.family_child(conn, root, root) is None
        assert await subagents.family_child(conn, stranger, first) is None


async def test_a_child_waiting_with_a_queue_still_works(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    # An interrupting message leaves the child waiting with it queued until its interrupted
    # turn's finish promotes it: not done, not a reason to wake the root.
    root, child = await parked_root(db, owner, model)
    later = db.now() + dt.timedelta(seconds=5)
    await set_columns(db, child, status="waiting", worker_id=None, updated_at=later)
    await queue_message(db, child, "and now this")
    assert subagents.is_working(await chat_row(db, child))
    async with db.write() as conn:
        assert not await subagents.any_settled(conn, [child])
        assert await subagents.wake_due(conn, later) == []
