"""Retries around the model call inside a turn: events, delays, the dropped attempt, errors."""

from __future__ import annotations

import anyio
import pytest

from chatd.engine.turn import run_turn
from chatd.events.delivery import Delivery, PartDelivery
from chatd.llm.types import TextDelta
from chatd.sdk.chats import ChatErrorKind
from chatd.sdk.events import ChatStreamEvent
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind
from tests.engine.turn_fakes import ScriptedClient, Stall, fault, harness, payloads, reply

pytestmark = pytest.mark.anyio


async def test_retry_then_success(db: Database, settings: Settings) -> None:
    client = ScriptedClient(
        [
            TextDelta("partial from attempt 1"),
            fault(ChatErrorKind.rate_limit, True, status_code=429),
        ],
        [fault(ChatErrorKind.overloaded, True, status_code=529)],
        reply("All good"),
    )
    sleeps: list[float] = []
    snapshots: list[tuple[Delivery[ChatStreamEvent] | None, list[PartDelivery]]] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        snapshots.append(h.hub.turn_snapshot(h.ctx.chat_id))

    h = await harness(db, settings, client, sleep=sleep)
    with h.hub.chat(h.ctx.chat_id) as sub:
        with anyio.fail_after(10):
            outcome = await run_turn(h.ctx)
        events = sub.drain()

    assert outcome.kind == OutcomeKind.done
    assert sleeps == [1.0, 2.0]
    assert [k for k, _ in payloads(events)] == [
        "part:assistant",
        "retry",
        "retry",
        "part:assistant",
        "part:assistant",
        "message",
    ]
    retries = [e.retry for e in events if e.retry is not None]
    assert [(r.attempt, r.delay_ms, r.kind, r.status_code) for r in retries] == [
        (1, 1000, ChatErrorKind.rate_limit, 429),
        (2, 2000, ChatErrorKind.overloaded, 529),
    ]
    assert all(r.error and r.provider == "openai" for r in retries)
    # While waiting, the failed attempt's parts are gone from the buffer; the retry is kept.
    pending_retry, buffered = snapshots[0]
    assert buffered == [] and pending_retry is not None
    assert pending_retry.item.retry == retries[0]
    [row] = await h.rows("assistant")
    assert row["content"] == [{"type": "text", "text": "All good"}]
    assert len(client.requests) == 3


async def test_retry_after_longer_than_the_policy_delay_wins(
    db: Database, settings: Settings
) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = ScriptedClient(
        [fault(ChatErrorKind.rate_limit, True, status_code=429, retry_after=7.5)], reply("ok")
    )
    h = await harness(db, settings, client, sleep=sleep)
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    assert sleeps == [7.5]


@pytest.mark.parametrize(
    "kind",
    [
        ChatErrorKind.auth,
        ChatErrorKind.config,
        ChatErrorKind.usage_limit,
        ChatErrorKind.provider_disabled,
        ChatErrorKind.generic,
    ],
)
async def test_non_retryable_errors_end_the_turn_at_once(
    db: Database, settings: Settings, kind: ChatErrorKind
) -> None:
    client = ScriptedClient([TextDelta("x"), fault(kind, False, status_code=400)])
    h = await harness(db, settings, client)
    with h.hub.chat(h.ctx.chat_id) as sub:
        outcome = await run_turn(h.ctx)
        events = sub.drain()
    assert outcome.kind == OutcomeKind.error
    assert outcome.error is not None and outcome.error.kind == kind
    assert not any(e.retry for e in events)
    assert len(client.requests) == 1
    assert await h.rows("assistant") == []


async def test_retries_are_exhausted_after_max_attempts(db: Database, settings: Settings) -> None:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    failing = [[fault(ChatErrorKind.timeout, True, status_code=503)] for _ in range(10)]
    client = ScriptedClient(*failing)
    h = await harness(db, settings, client, sleep=sleep, retry_max_attempts=4, retry_max_delay=3)
    with h.hub.chat(h.ctx.chat_id) as sub:
        outcome = await run_turn(h.ctx)
        events = sub.drain()
    assert len(client.requests) == 4
    assert sleeps == [1.0, 2.0, 3.0]
    assert [e.retry.attempt for e in events if e.retry] == [1, 2, 3]
    assert outcome.kind == OutcomeKind.error and outcome.error is not None
    assert outcome.error.kind == ChatErrorKind.timeout and outcome.error.retryable
    assert outcome.error.detail.startswith("max retry attempts (4) exceeded")


async def test_startup_timeout_is_classified_and_retried(db: Database, settings: Settings) -> None:
    stall = Stall()
    client = ScriptedClient([stall], reply("late but fine"))
    h = await harness(db, settings, client, startup_timeout=0.05)
    with h.hub.chat(h.ctx.chat_id) as sub:
        with anyio.fail_after(10):
            outcome = await run_turn(h.ctx)
        events = sub.drain()
    assert stall.reached.is_set()
    assert outcome.kind == OutcomeKind.done
    [retry] = [e.retry for e in events if e.retry]
    assert retry.kind == ChatErrorKind.startup_timeout and retry.attempt == 1
    assert retry.status_code is None
    [row] = await h.rows("assistant")
    assert row["content"] == [{"type": "text", "text": "late but fine"}]


async def test_a_stream_slower_than_the_startup_timeout_after_its_first_part_is_fine(
    db: Database, settings: Settings
) -> None:
    """The guard covers the first part only."""

    class Slow(ScriptedClient):
        async def stream(self, request):  # type: ignore[no-untyped-def,override]
            self.requests.append(request)
            yield TextDelta("first")
            await anyio.sleep(0.1)
            for part in reply(" then more"):
                yield part

    h = await harness(db, settings, Slow(), startup_timeout=0.02)
    with anyio.fail_after(10):
        assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    [row] = await h.rows("assistant")
    assert row["content"][0]["text"] == "first then more"
