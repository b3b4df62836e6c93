"""Turns start a few at a time: a turn holds its start slot until its first model call."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from chatd.engine.titles import LABEL_INSTRUCTIONS
from chatd.engine.turn import run_turn
from chatd.engine.types import StartSlot, TurnContext
from chatd.engine.worker import SUMMARIES_AT_ONCE, TURN_STARTS_AT_ONCE
from chatd.events.hub import EventHub
from chatd.llm.types import Generated, ModelRequest, SystemMessage
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.turn_fakes import ScriptedClient, harness, reply
from tests.engine.worker_support import (
    QuietModel,
    Turns,
    WatchedSemaphore,
    fast,
    running_worker,
    text_turn,
    wait_status,
    wait_until,
)
from tests.helpers import ApiUser, make_chat

pytestmark = pytest.mark.anyio


async def test_a_turn_frees_its_slot_when_its_model_call_goes_out(
    db: Database, settings: Settings
) -> None:
    places = asyncio.Semaphore(1)
    free_at_call: list[bool] = []

    class Watching(ScriptedClient):
        def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def]
            free_at_call.append(not places.locked())
            return super().stream(request)

    h = await harness(db, settings, Watching(reply("hi")))
    slot = StartSlot(places)
    await slot.take()
    ctx = dataclasses.replace(h.ctx, start_slot=slot)
    outcome = await run_turn(ctx)
    assert outcome.kind == OutcomeKind.done
    assert free_at_call == [True]
    slot.free()  # freeing twice gives nothing back twice
    await places.acquire()
    assert places.locked()


async def test_turns_past_the_limit_wait_for_a_start_slot(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    ids = [await make_chat(db, admin, model, f"chat {i}") for i in range(TURN_STARTS_AT_ONCE + 1)]
    go = asyncio.Event()

    async def starting(ctx: TurnContext) -> TurnOutcome:
        await go.wait()  # start-up work that has not reached a model call: the slot is held
        return await text_turn("hi")(ctx)

    turns = Turns(starting)
    places = WatchedSemaphore(TURN_STARTS_AT_ONCE)
    async with running_worker(db, hub, fast(settings), turns, start_places=places):

        async def one_waits_at_the_limit() -> bool:
            return places.waited == 1 and len(turns.started) == TURN_STARTS_AT_ONCE

        await wait_until(one_waits_at_the_limit)
        go.set()
        for chat_id in ids:
            await wait_status(db, chat_id, "waiting")
    assert sorted(turns.started) == sorted(ids)
    assert places.most_held == TURN_STARTS_AT_ONCE


async def test_summaries_are_made_a_few_at_a_time(
    db: Database, hub: EventHub, settings: Settings, admin: ApiUser, model: uuid.UUID
) -> None:
    count = SUMMARIES_AT_ONCE + 2
    ids = [await make_chat(db, admin, model, f"chat {i}") for i in range(count)]
    active, most, go = 0, 0, asyncio.Event()

    class SlowSummaries(QuietModel):
        async def generate(self, request: ModelRequest) -> Generated:
            nonlocal active, most
            first = request.messages[0]
            if not (isinstance(first, SystemMessage) and first.text == LABEL_INSTRUCTIONS):
                return await super().generate(request)  # a title: not held back
            active += 1
            most = max(most, active)
            await go.wait()
            active -= 1
            return await super().generate(request)

    def factory(**_: object) -> SlowSummaries:
        return SlowSummaries()

    turns = Turns(text_turn("hi"))
    places = WatchedSemaphore(SUMMARIES_AT_ONCE)
    async with running_worker(
        db, hub, fast(settings), turns, client_factory=factory, summary_places=places
    ):
        for chat_id in ids:
            await wait_status(db, chat_id, "waiting")

        async def the_rest_wait() -> bool:
            return active == SUMMARIES_AT_ONCE and places.waited == count - SUMMARIES_AT_ONCE

        await wait_until(the_rest_wait)
        go.set()
    assert most == SUMMARIES_AT_ONCE
