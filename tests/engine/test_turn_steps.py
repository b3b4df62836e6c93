"""The step persistence guard, cost maths, and model resolution for a turn."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa

from chatd.engine.cost import cost_micros
from chatd.engine.turn import run_turn
from chatd.llm.types import Usage
from chatd.sdk.chats import ChatErrorKind, ChatMessagePart, ChatMessagePartType, parts_json
from chatd.sdk.providers import ChatModelCost
from chatd.settings import Settings
from chatd.store import chat_state, stream_log, worker_state
from chatd.store.chats import lock_chat
from chatd.store.db import Database
from chatd.store.providers import get_provider_by_name, update_provider, upsert_user_key
from chatd.store.steps import Step, StepRefused, save_step
from chatd.store.tables import chat_providers, chats
from chatd.store.turn_outcome import OutcomeKind
from tests.engine.turn_fakes import Harness, ScriptedClient, harness, reply
from tests.engine.worker_support import blocked_on_a_lock
from tests.helpers import seed_model_config

pytestmark = pytest.mark.anyio

TEXT = [ChatMessagePart(type=ChatMessagePartType.text, text="hi")]


async def _set_chat(h: Harness, **values: object) -> None:
    async with h.db.write() as conn:
        await conn.execute(chats.update().where(chats.c.id == h.ctx.chat_id).values(**values))


RESULT = ChatMessagePart(
    type=ChatMessagePartType.tool_result, tool_call_id="c", tool_name="t", result={}
)
# A step of one message whose model the chat names is one statement; any other a transaction.
STEPS = {
    "one statement": lambda config_id: Step(config_id, TEXT, model_is_current=True),
    "with a tool result": lambda config_id: Step(config_id, TEXT, [RESULT], model_is_current=True),
    "model not yet the chat's": lambda config_id: Step(config_id, TEXT),
}


async def _persist(h: Harness, worker_id: uuid.UUID, step: Step) -> None:
    outbox = await save_step(h.db, h.db.now(), h.ctx.chat_id, worker_id, step, turn_seq=0)
    roles = [e.message.role.value for e in outbox.stream if e.message]
    assert roles == ["assistant"] + ["tool"] * len(step.tool_results)


@pytest.mark.parametrize("kind", STEPS)
@pytest.mark.parametrize(
    ("status", "owner_is_me", "allowed"),
    [
        ("running", True, True),
        ("running", False, False),  # another worker took the chat over
        ("waiting", False, True),  # a plain interrupt: partial output is kept
        ("pending", False, False),  # an edit or promote won
        ("error", False, False),
    ],
)
async def test_persist_guard(
    db: Database, settings: Settings, kind: str, status: str, owner_is_me: bool, allowed: bool
) -> None:
    h = await harness(db, settings, ScriptedClient())
    step = STEPS[kind](h.config_id)
    await _set_chat(h, status=status, worker_id=h.ctx.worker_id if owner_is_me else uuid.uuid4())
    if allowed:
        await _persist(h, h.ctx.worker_id, step)
        assert len(await h.rows("assistant")) == 1
        assert len(await h.rows("tool")) == len(step.tool_results)
    else:
        with pytest.raises(StepRefused):
            await _persist(h, h.ctx.worker_id, step)
        assert await h.rows("assistant") == [] and await h.rows("tool") == []


async def test_a_step_stores_its_usage_and_makes_its_model_the_chats(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient())
    other = await seed_model_config(db, model="other-model", is_default=False)
    await _set_chat(h, status="running", worker_id=h.ctx.worker_id)
    usage = Usage(input_tokens=10, output_tokens=5, total_tokens=15, reasoning_tokens=0)
    step = Step(
        other,
        TEXT,
        usage=usage,
        context_limit=1000,
        cost_micros=7,
        runtime_ms=12,
        provider_response_id="resp-1",
    )
    await _persist(h, h.ctx.worker_id, step)
    (row,) = await h.rows("assistant")
    stored = {
        k: row[k]
        for k in (
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "reasoning_tokens",
            "context_limit",
            "total_cost_micros",
            "runtime_ms",
            "provider_response_id",
            "model_config_id",
        )
    }
    assert stored == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
        "reasoning_tokens": None,  # zero counts are stored as NULL
        "context_limit": 1000,
        "total_cost_micros": 7,
        "runtime_ms": 12,
        "provider_response_id": "resp-1",
        "model_config_id": other,
    }
    async with db.read() as conn:
        named = (
            await conn.execute(
                sa.select(chats.c.last_model_config_id).where(chats.c.id == h.ctx.chat_id)
            )
        ).scalar_one()
    assert named == other


@pytest.mark.parametrize("kind", STEPS)
async def test_a_step_waiting_for_an_edit_is_refused(
    db: Database, settings: Settings, kind: str
) -> None:
    """The edit holds the row lock and makes the chat pending while the step waits for it:
    the step must see the edit, not the row as it was when it started."""
    h = await harness(db, settings, ScriptedClient())
    step = STEPS[kind](h.config_id)
    await _set_chat(h, status="running", worker_id=h.ctx.worker_id)
    async with db.write() as conn:
        await lock_chat(conn, h.ctx.chat_id)
        saving = asyncio.create_task(_persist(h, h.ctx.worker_id, step))
        await blocked_on_a_lock(db, saving)
        await conn.execute(
            chats.update()
            .where(chats.c.id == h.ctx.chat_id)
            .values(status="pending", worker_id=None)
        )
    with pytest.raises(StepRefused):
        await saving
    assert await h.rows("assistant") == [] and await h.rows("tool") == []


async def _claim(h: Harness, worker_id: uuid.UUID) -> int:
    """Claim the (pending) chat as ``worker_id`` does; its turn's ``turn_seq``."""
    async with h.db.write() as conn:
        rows = await worker_state.acquire_chats(conn, h.db.now(), worker_id, 10)
        announced = await worker_state.announce_claims(conn, h.db.now(), rows)
    (row,) = rows
    (running,) = announced.logged
    assert row["turn_seq"] == running.seq
    return int(row["turn_seq"])


async def _save_text(h: Harness, worker_id: uuid.UUID, turn_seq: int) -> None:
    step = Step(h.config_id, TEXT)
    await save_step(h.db, h.db.now(), h.ctx.chat_id, worker_id, step, turn_seq=turn_seq)


async def test_a_turn_interrupted_to_waiting_keeps_its_partial_step(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient())
    await _set_chat(h, status="pending", worker_id=None)
    turn = await _claim(h, h.ctx.worker_id)
    async with db.write() as conn:
        _, outbox = await chat_state.interrupt(conn, db.now(), h.ctx.chat_id)
        await stream_log.seal(conn, outbox, db.now())
    await _save_text(h, h.ctx.worker_id, turn)
    assert [r["content"] for r in await h.rows("assistant")] == [parts_json(TEXT)]


async def test_a_turn_superseded_by_a_later_turn_saves_nothing(
    db: Database, settings: Settings
) -> None:
    """An edit made the chat pending and another worker's turn ran and ended (waiting) before
    the first turn saved its partial step: that step belongs to a history that is gone."""
    h = await harness(db, settings, ScriptedClient())
    await _set_chat(h, status="pending", worker_id=None)
    first = await _claim(h, h.ctx.worker_id)
    await _set_chat(h, status="pending", worker_id=None)  # the edit
    other = uuid.uuid4()
    second = await _claim(h, other)
    assert second > first
    await _set_chat(h, status="waiting", worker_id=None)  # the second turn ended
    with pytest.raises(StepRefused):
        await _save_text(h, h.ctx.worker_id, first)
    assert await h.rows("assistant") == []
    # The later turn, interrupted the same way, still keeps its own.
    await _save_text(h, other, second)
    assert len(await h.rows("assistant")) == 1


def test_cost() -> None:
    prices = ChatModelCost(
        input_price_per_million_tokens=3,
        output_price_per_million_tokens=15,
        cache_read_price_per_million_tokens=0.3,
        cache_write_price_per_million_tokens=3.75,
    )
    usage = Usage(
        input_tokens=10,
        output_tokens=20,
        cache_read_tokens=100,
        cache_creation_tokens=4,
        reasoning_tokens=999,
    )
    # 30 + 300 + 30 + 15 = 375; reasoning is inside output and not added again.
    assert cost_micros(usage, prices) == 375
    assert cost_micros(Usage(input_tokens=1), prices) == 3
    assert (
        cost_micros(Usage(input_tokens=1), ChatModelCost(input_price_per_million_tokens=0.1)) == 1
    )
    assert cost_micros(usage, None) is None
    assert cost_micros(None, prices) is None
    assert cost_micros(Usage(), prices) is None  # no usage
    assert cost_micros(usage, ChatModelCost()) is None  # no prices
    only_output = ChatModelCost(output_price_per_million_tokens=1)
    assert cost_micros(Usage(input_tokens=5), only_output) is None  # nothing priced was used


async def _provider(h: Harness, **values: object) -> None:
    async with h.db.write() as conn:
        row = await get_provider_by_name(conn, "openai")
        assert row is not None
        await update_provider(conn, h.db.now(), row["id"], values, h.db.secrets)


async def test_disabled_provider_fails_the_turn(db: Database, settings: Settings) -> None:
    client = ScriptedClient(reply("never"))
    h = await harness(db, settings, client)
    await _provider(h, enabled=False)
    outcome = await run_turn(h.ctx)
    assert outcome.kind == OutcomeKind.error and outcome.error is not None
    assert outcome.error.kind == ChatErrorKind.provider_disabled and not outcome.error.retryable
    assert client.requests == [] and h.factory_calls == []


async def test_user_key_required_but_missing(db: Database, settings: Settings) -> None:
    h = await harness(db, settings, ScriptedClient())
    await _provider(h, central_api_key_enabled=False, allow_user_api_key=True, api_key="")
    outcome = await run_turn(h.ctx)
    assert outcome.kind == OutcomeKind.error and outcome.error is not None
    assert outcome.error.kind == ChatErrorKind.missing_key


async def test_own_key_wins_and_central_key_is_the_fallback(
    db: Database, settings: Settings
) -> None:
    h = await harness(db, settings, ScriptedClient(reply("a"), reply("b")))
    await _provider(
        h, allow_user_api_key=True, allow_central_api_key_fallback=True, base_url="http://x/v1"
    )
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    async with db.write() as conn:
        provider_id = (
            await conn.execute(
                sa.select(chat_providers.c.id).where(chat_providers.c.provider == "openai")
            )
        ).scalar_one()
        await upsert_user_key(conn, db.now(), h.owner.id, provider_id, "sk-own", db.secrets)
    await h.say("and again")
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    assert [(c["api_key"], c["base_url"]) for c in h.factory_calls] == [
        ("sk-test", "http://x/v1"),
        ("sk-own", "http://x/v1"),
    ]


async def test_call_options_come_from_the_model_config(db: Database, settings: Settings) -> None:
    client = ScriptedClient(reply("ok"))
    options = {"temperature": 0.2, "provider_options": {"openai": {"reasoning_effort": "low"}}}
    h = await harness(db, settings, client, options=options)
    assert (await run_turn(h.ctx)).kind == OutcomeKind.done
    sent = client.requests[0].options
    assert sent.max_output_tokens == 32_000 and sent.temperature == 0.2
    assert sent.provider_options == {"openai": {"reasoning_effort": "low"}}
