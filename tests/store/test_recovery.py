"""Stale recovery (§4.5, chatd.store.recovery): what a dead worker left behind, and the guards
that keep recovery away from chats a live worker still owns."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatd.settings import Settings
from chatd.store import chat_state, recovery
from chatd.store import worker_state as ws
from chatd.store.chat_state import NewUserMessage, SendOptions
from chatd.store.db import Database
from chatd.store.messages import queued_messages, visible_messages
from chatd.store.outbox import Outbox
from chatd.store.steps import Step, StepRefused, save_step
from chatd.store.titles import REGENERATION_WORKER_ID
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.worker_support import chat_row, label, set_columns, text_part
from tests.helpers import ApiUser, bootstrap_admin, make_chat, seed_model_config
from tests.store.schema import chat_indexes, fresh_database, migrate
from tests.store.test_worker_state import action_chat, ago

pytestmark = pytest.mark.anyio

ME = uuid.uuid4()
STALE = 300.0


@pytest.fixture
async def owner(db: Database, settings: Settings) -> ApiUser:
    return await bootstrap_admin(db, settings)


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


def later(db: Database, seconds: float = STALE + 1) -> dt.datetime:
    return db.now() + dt.timedelta(seconds=seconds)


async def recover(db: Database, now: dt.datetime | None = None) -> Outbox:
    async with db.write() as conn:
        return await recovery.recover_stale(conn, now or db.now(), STALE)


async def claim_all(db: Database, worker: uuid.UUID = ME) -> None:
    async with db.write() as conn:
        await ws.acquire_chats(conn, db.now(), worker, 100)


async def send(
    db: Database, owner: ApiUser, chat_id: uuid.UUID, text: str, *, interrupt: bool = False
) -> None:
    new = NewUserMessage(author_id=owner.id, content=[text_part(text)])
    async with db.write() as conn:
        await chat_state.send_message(
            conn, db.now(), chat_id, new, SendOptions(interrupt=interrupt)
        )


async def left_behind(db: Database, owner: ApiUser, model: uuid.UUID) -> uuid.UUID:
    """A chat running on ``ME`` that got "two" queued, then "three" with busy_behavior
    interrupt: waiting with two queued messages, and ``ME`` never ran its finish."""
    chat_id = await make_chat(db, owner, model, "one")
    await claim_all(db)
    await send(db, owner, chat_id, "two")
    await send(db, owner, chat_id, "three", interrupt=True)
    row = await chat_row(db, chat_id)
    assert (row["status"], row["queue_length"], row["worker_id"]) == ("waiting", 2, None)
    return chat_id


async def history(db: Database, chat_id: uuid.UUID) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await visible_messages(conn, chat_id)
    return [(m.role, "".join(p.text or "" for p in m.content or [])) for m in rows]


async def queue_texts(db: Database, chat_id: uuid.UUID) -> list[str]:
    async with db.read() as conn:
        queue = await queued_messages(conn, chat_id)
    return ["".join(p.text or "" for p in q.content or []) for q in queue]


def labels(outbox: Outbox) -> list[str]:
    return [label(e) for e in outbox.stream]


def watch_kinds(outbox: Outbox) -> list[str]:
    return [f"{e.kind}:{e.chat.status}" for _, e in outbox.watch]


# ---- running and requires_action (T9, T13) -------------------------------------------------


async def test_stale_running_goes_back_to_pending_and_fresh_is_kept(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    stale, fresh = [await make_chat(db, owner, model) for _ in range(2)]
    await claim_all(db)
    await set_columns(db, stale, heartbeat_at=ago(600))
    outbox = await recover(db)
    row = await chat_row(db, stale)
    assert (row["status"], row["worker_id"], row["last_error"]) == ("pending", None, None)
    assert (await chat_row(db, fresh))["status"] == "running"
    assert labels(outbox) == ["status:pending"]
    assert watch_kinds(outbox) == ["status_change:pending"]
    assert outbox.wake_workers


async def test_stale_requires_action_fails_with_synthetic_timeout_results(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    stale = await action_chat(db, owner, model)
    fresh = await action_chat(db, owner, model)
    await set_columns(db, stale, status="requires_action", updated_at=ago(600))
    await set_columns(db, fresh, status="requires_action", updated_at=ago(10))
    outbox = await recover(db)
    row = await chat_row(db, stale)
    assert row["status"] == "error"
    assert row["last_error"] == {
        "message": "Dynamic tool execution timed out",
        "kind": "generic",
        "retryable": False,
    }
    async with db.read() as conn:
        last = (await visible_messages(conn, stale))[-1]
    assert last.role == "tool" and last.created_by is None
    assert last.content is not None
    result = last.content[0]
    assert (result.tool_call_id, result.tool_name, result.is_error) == ("call-1", "my_tool", True)
    assert result.result == {"error": "Dynamic tool execution timed out"}
    assert labels(outbox) == ["message:tool", "status:error"]
    assert (await chat_row(db, fresh))["status"] == "requires_action"


# ---- a queue its lost finish should have promoted -------------------------------------------


async def test_a_queue_left_behind_by_a_dead_worker_is_promoted_as_the_finish_would(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await left_behind(db, owner, model)
    outbox = await recover(db, later(db))

    row = await chat_row(db, chat_id)
    assert (row["status"], row["worker_id"], row["queue_length"]) == ("pending", None, 1)
    assert await history(db, chat_id) == [("user", "one"), ("user", "two")]
    assert await queue_texts(db, chat_id) == ["three"]
    assert labels(outbox) == ["message:user", "queue:1", "status:pending"]
    assert watch_kinds(outbox) == ["status_change:pending"]
    assert outbox.wake_workers
    promoted = outbox.stream[0].message
    assert promoted is not None
    assert (promoted.created_by, promoted.model_config_id) == (owner.id, model)


async def test_a_fresh_interrupt_is_left_to_the_worker_that_is_finishing_it(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """Its worker hears of the interrupt at once and finishes; only once ``stale_after`` has
    passed since the interrupt is no finish coming."""
    chat_id = await left_behind(db, owner, model)
    before = await chat_row(db, chat_id)
    assert await recover(db, later(db, STALE - 5)) == Outbox()
    assert await chat_row(db, chat_id) == before

    finished = await ws.finish(db, db.now(), chat_id, ME, TurnOutcome(OutcomeKind.interrupted))
    assert finished.status == "pending"
    assert await history(db, chat_id) == [("user", "one"), ("user", "two")]
    assert await recover(db, later(db)) == Outbox()  # the finish did it: nothing left behind
    assert await queue_texts(db, chat_id) == ["three"]


async def test_a_running_chat_with_a_live_worker_is_not_touched(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """Running with a fresh heartbeat: its queue waits for the turn's own finish."""
    chat_id = await make_chat(db, owner, model)
    await claim_all(db)
    await send(db, owner, chat_id, "queued")
    await set_columns(db, chat_id, heartbeat_at=later(db, 10), updated_at=ago(3600))
    before = await chat_row(db, chat_id)
    assert await recover(db, later(db)) == Outbox()
    assert await chat_row(db, chat_id) == before


async def test_queues_an_error_archive_or_client_tool_holds_are_not_promoted(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """A turn that failed keeps its queue for the user (§3.2 promotes only on waiting); an
    archived chat's queue waits for the unarchive; requires_action waits for the client."""
    failed, archived, action = [await left_behind(db, owner, model) for _ in range(3)]
    await set_columns(db, failed, status="error")
    await set_columns(db, archived, archived=True)
    await set_columns(db, action, status="requires_action", updated_at=later(db, 10))
    empty = await make_chat(db, owner, model)
    await set_columns(db, empty, status="waiting")
    before = {c: await chat_row(db, c) for c in (failed, archived, action, empty)}
    assert await recover(db, later(db)) == Outbox()
    for chat_id, row in before.items():
        assert await chat_row(db, chat_id) == row


async def test_a_fresh_title_regeneration_mark_holds_the_chat_until_it_is_stale(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await left_behind(db, owner, model)
    await set_columns(db, chat_id, worker_id=REGENERATION_WORKER_ID, heartbeat_at=later(db))
    assert await recover(db, later(db)) == Outbox()
    await set_columns(db, chat_id, heartbeat_at=db.now())
    assert labels(await recover(db, later(db))) == ["message:user", "queue:1", "status:pending"]


async def test_a_left_behind_queue_is_promoted_once(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """Two recoveries at once (two replicas), then the dead worker's late writes: one
    promotion; the late partial step is refused, so nothing lands after the promoted message."""
    chat_id = await left_behind(db, owner, model)
    when = later(db)
    first, second = await asyncio.gather(recover(db, when), recover(db, when))
    assert sorted([labels(first), labels(second)]) == [
        [],
        ["message:user", "queue:1", "status:pending"],
    ]
    assert labels(await recover(db, later(db, 2 * STALE))) == []

    late = Step(model_config_id=model, assistant=[text_part("partial answer to one")])
    with pytest.raises(StepRefused):
        await save_step(db, db.now(), chat_id, ME, late, turn_seq=0)
    finished = await ws.finish(db, db.now(), chat_id, ME, TurnOutcome(OutcomeKind.interrupted))
    assert finished.status == "pending" and finished.outbox == Outbox(sealed=True)
    assert await history(db, chat_id) == [("user", "one"), ("user", "two")]
    assert await queue_texts(db, chat_id) == ["three"]
    row = await chat_row(db, chat_id)
    assert (row["status"], row["queue_length"]) == ("pending", 1)


async def test_the_rest_of_the_queue_follows_through_the_normal_finish(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await left_behind(db, owner, model)
    await recover(db, later(db))
    await claim_all(db)
    step = Step(model_config_id=model, assistant=[text_part("answer to two")])
    await save_step(db, db.now(), chat_id, ME, step, turn_seq=0)
    finished = await ws.finish(db, db.now(), chat_id, ME, TurnOutcome(OutcomeKind.done))
    assert finished.status == "pending"
    assert await history(db, chat_id) == [
        ("user", "one"),
        ("user", "two"),
        ("assistant", "answer to two"),
        ("user", "three"),
    ]
    assert await queue_texts(db, chat_id) == []


# ---- the index the third rule reads -----------------------------------------------------------


async def test_the_migration_adds_and_removes_the_queued_chats_index(
    backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        assert "ix_chats_queued" in chat_indexes(url)
        migrate(url, "0004")
        assert "ix_chats_queued" not in chat_indexes(url)
        migrate(url, "head")
        assert "ix_chats_queued" in chat_indexes(url)


async def test_sqlite_reads_left_behind_queues_through_the_partial_index(
    db: Database, owner: ApiUser, model: uuid.UUID
) -> None:
    """Not a walk over every waiting chat: the statement must imply the index's WHERE."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL picks its plan by table statistics")
    statements: list[str] = []

    with db.observe(statements.append):
        await recover(db)
    # The left-behind queues' statement (the parked turns' wake reads queue_length too).
    (scan,) = [s for s in statements if "queue_length" in s and "awaiting_until" not in s]
    async with db.read() as conn:
        explain = sa.text("EXPLAIN QUERY PLAN " + scan.replace("?", "'x'"))
        plan = (await conn.execute(explain)).all()
    assert any("ix_chats_queued" in str(step) for step in plan), plan
