"""The step persistence guard, cost maths, and model resolution for a turn."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from chatd.engine.cost import cost_micros
from chatd.engine.turn import run_turn
from chatd.engine.types import OutcomeKind
from chatd.llm.types import Usage
from chatd.sdk.chats import ChatErrorKind, ChatMessagePart, ChatMessagePartType
from chatd.sdk.providers import ChatModelCost
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.providers import upsert_user_key
from chatd.store.steps import Step, StepRefused, persist_step
from chatd.store.tables import chat_providers, chats
from tests.engine.turn_fakes import Harness, ScriptedClient, harness, reply

pytestmark = pytest.mark.anyio

TEXT = [ChatMessagePart(type=ChatMessagePartType.text, text="hi")]


async def _set_chat(h: Harness, **values: object) -> None:
    async with h.db.write() as conn:
        await conn.execute(chats.update().where(chats.c.id == h.ctx.chat_id).values(**values))


async def _persist(h: Harness, worker_id: uuid.UUID) -> None:
    result = ChatMessagePart(
        type=ChatMessagePartType.tool_result, tool_call_id="c", tool_name="t", result={}
    )
    step = Step(model_config_id=h.config_id, assistant=TEXT, tool_results=[result])
    async with h.db.write() as conn:
        outbox = await persist_step(conn, h.db.now(), h.ctx.chat_id, worker_id, step)
    assert [e.message.role.value for e in outbox.stream if e.message] == ["assistant", "tool"]


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
    db: Database, settings: Settings, status: str, owner_is_me: bool, allowed: bool
) -> None:
    h = await harness(db, settings, ScriptedClient())
    await _set_chat(h, status=status, worker_id=h.ctx.worker_id if owner_is_me else uuid.uuid4())
    if allowed:
        await _persist(h, h.ctx.worker_id)
        assert len(await h.rows("assistant")) == 1 and len(await h.rows("tool")) == 1
    else:
        with pytest.raises(StepRefused):
            await _persist(h, h.ctx.worker_id)
        assert await h.rows("assistant") == [] and await h.rows("tool") == []


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
        await conn.execute(
            chat_providers.update().where(chat_providers.c.provider == "openai").values(**values)
        )


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
        await upsert_user_key(conn, db.now(), h.owner.id, provider_id, "sk-own")
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
