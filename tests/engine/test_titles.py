"""Automatic titles and turn summaries (engine-behaviour §15.1, §15.3) against fake models."""

from __future__ import annotations

import uuid

import anyio
import pytest

from chatd.engine.models import resolve_model
from chatd.engine.quickgen import GenerationFailed, QuickGen, generate_short
from chatd.engine.titles import (
    maybe_generate_title,
    normalise_label,
    normalise_title,
    update_turn_summary,
)
from chatd.llm.types import Message, SystemMessage, UserMessage
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatStatus, parts_json
from chatd.sdk.events import ChatWatchEventKind
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.tables import chat_model_configs
from tests.engine.quickgen_fakes import Factory, FakeModel, Hang, Setup, failure, setup
from tests.helpers import seed_model_config

pytestmark = pytest.mark.anyio


def text_part(text: str) -> list[dict[str, object]]:
    return parts_json([ChatMessagePart(type=ChatMessagePartType.text, text=text)])


async def add_message(s: Setup, role: str, text: str, visibility: str = "both") -> None:
    async with s.db.write() as conn:
        await insert_message(
            conn,
            now=s.db.now(),
            chat_id=s.chat_id,
            role=role,
            content=text_part(text),
            visibility=visibility,
        )


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ('  "Fix flaky   login test"  ', "Fix flaky login test"),
        ("`Refactor` the\n\tparser", "Refactor the parser"),
        ("\u201cSmart quotes\u201d", "Smart quotes"),
        ("'single'", "single"),
        ("   ", ""),
        ("x" * 100, "x" * 80),
        ("\u00e9" * 90, "\u00e9" * 80),  # runes, not bytes
    ],
)
def test_normalise_title(raw: str, title: str) -> None:
    assert normalise_title(raw) == title


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("Fixed the login bug.", "Fixed the login bug"),
        ("I fixed the login bug!", "Fixed the login bug"),
        ('"agent waiting for tool results"', "Waiting for tool results"),
        ("Ran tests and updated six different files today", "Ran tests and updated six"),
        ("Done…", "Done"),
        ("", ""),
    ],
)
def test_normalise_label(raw: str, label: str) -> None:
    assert normalise_label(raw) == label


# --- automatic title -----------------------------------------------------------------------


async def test_title_generated_with_the_cheap_model(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    before = await s.chat()
    cheap = FakeModel("openai", '  "Fix flaky   login test"  ')
    factory = Factory(gpt_4o_mini=cheap)
    with s.hub.owner(s.owner.id) as sub, anyio.fail_after(10):
        await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
        events = sub.drain()

    after = await s.chat()
    assert after["title"] == "Fix flaky login test"
    assert after["updated_at"] == before["updated_at"]
    assert [(e.kind, e.chat.title) for e in events] == [
        (ChatWatchEventKind.title_change, "Fix flaky login test")
    ]
    assert factory.calls[0] == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "api_key": "sk-test",
        "base_url": None,
    }
    [request] = cheap.requests
    assert request.model == "gpt-4o-mini" and request.allow_tools is False
    system, user = request.messages
    assert isinstance(system, SystemMessage) and isinstance(user, UserMessage)
    assert "Please fix the flaky login test in CI" in str(user.content[0])


async def test_anthropic_cheap_model_is_tried_first(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    await seed_model_config(db, provider="anthropic", model="claude-sonnet-4-5", is_default=False)
    factory = Factory(claude_haiku_4_5=FakeModel("anthropic", "Login test fix"))
    await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
    assert factory.models_built == ["claude-haiku-4-5"]
    assert (await s.chat())["title"] == "Login test fix"


async def test_falls_back_to_the_chats_own_model(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    cheap = FakeModel("openai", failure(retryable=False))
    own = FakeModel("openai", "Flaky CI login test")
    factory = Factory(gpt_4o_mini=cheap, gpt_4o=own)
    await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
    assert factory.models_built == ["gpt-4o-mini", "gpt-4o"]
    assert len(cheap.requests) == 1  # not retryable: no retry
    assert (await s.chat())["title"] == "Flaky CI login test"


async def test_retryable_errors_are_retried(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    cheap = FakeModel("openai", failure(retryable=True), failure(retryable=True), "Fix login")
    await maybe_generate_title(s.ctx(settings, Factory(gpt_4o_mini=cheap), uuid.uuid4()))
    assert len(cheap.requests) == 3
    assert (await s.chat())["title"] == "Fix login"


async def test_every_model_failing_leaves_the_title(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    before = (await s.chat())["title"]
    factory = Factory(gpt_4o_mini=FakeModel("openai", "  ``  "), gpt_4o=FakeModel("o", failure()))
    with s.hub.owner(s.owner.id) as sub:
        await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
        assert sub.drain() == []
    assert (await s.chat())["title"] == before


async def test_a_hanging_model_times_out_and_the_next_answers(
    db: Database, settings: Settings
) -> None:
    s = await setup(db, settings)
    factory = Factory(gpt_4o_mini=FakeModel("openai", Hang()), gpt_4o=FakeModel("o", "Own"))
    gen = QuickGen(db, settings, client_factory=factory, timeout=0.05)
    messages: list[Message] = [UserMessage([])]
    with anyio.fail_after(10):
        title = await generate_short(
            gen, await s.chat(), messages, max_output_tokens=10, clean=normalise_title
        )
    assert title == "Own"
    factory.models["gpt-4o"].answers = [Hang()]
    with anyio.fail_after(10), pytest.raises(GenerationFailed):
        await generate_short(gen, await s.chat(), messages, max_output_tokens=10, clean=str)


@pytest.mark.parametrize("case", ["assistant", "second_user", "renamed", "blank", "tool"])
async def test_ineligible_chats_get_no_title(db: Database, settings: Settings, case: str) -> None:
    s = await setup(db, settings, "" if case == "blank" else "Fix the login test")
    if case == "assistant":
        await add_message(s, "assistant", "On it")
    elif case == "second_user":
        await add_message(s, "user", "And the signup test")
    elif case == "tool":
        await add_message(s, "tool", "{}")
    elif case == "renamed":
        await s.set(title="My own title")
    elif case == "blank":
        await s.set(title="New Chat")
    factory = Factory(gpt_4o_mini=FakeModel("openai", "Generated"))
    await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
    assert factory.calls == []
    assert (await s.chat())["title"] != "Generated"


async def test_a_chat_claimed_with_a_turn_summary_is_past_its_first_turn(
    db: Database, settings: Settings
) -> None:
    """Every finished turn leaves a summary: the worker's claimed row tells, with no read."""
    s = await setup(db, settings)
    factory = Factory(gpt_4o_mini=FakeModel("openai", "Generated"))
    ctx = s.ctx(settings, factory, uuid.uuid4())
    await s.set(last_turn_summary="Finished latest turn")
    ctx.chat = await s.chat()
    await maybe_generate_title(ctx)
    assert factory.calls == []
    await s.set(last_turn_summary=None)  # the same chat on its first turn
    ctx.chat = await s.chat()
    await maybe_generate_title(ctx)
    assert (await s.chat())["title"] == "Generated"


async def test_model_only_rows_do_not_block_the_title(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    await add_message(s, "assistant", "hidden", visibility="model")
    factory = Factory(gpt_4o_mini=FakeModel("openai", "Generated"))
    await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
    assert (await s.chat())["title"] == "Generated"


async def test_subagent_fallback_title_is_eligible(db: Database, settings: Settings) -> None:
    s = await setup(db, settings, "one two three four five six seven")
    await s.set(title="one two three four five six...")
    factory = Factory(gpt_4o_mini=FakeModel("openai", "Counting words"))
    await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
    assert (await s.chat())["title"] == "Counting words"


async def test_a_rename_during_generation_wins(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)

    async def rename_first() -> str:
        await s.set(title="Renamed by the user")
        return "Generated title"

    factory = Factory(gpt_4o_mini=FakeModel("openai", rename_first))
    with s.hub.owner(s.owner.id) as sub:
        await maybe_generate_title(s.ctx(settings, factory, uuid.uuid4()))
        assert sub.drain() == []
    assert (await s.chat())["title"] == "Renamed by the user"


# --- turn summary --------------------------------------------------------------------------


async def test_turn_summary_is_stored_and_announced(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    await add_message(s, "assistant", "I fixed the test by waiting for the login form.")
    before = await s.chat()
    cheap = FakeModel("openai", "I fixed the flaky login test.")
    with s.hub.owner(s.owner.id) as sub:
        await update_turn_summary(
            s.ctx(settings, Factory(gpt_4o_mini=cheap), uuid.uuid4()), ChatStatus.waiting
        )
        events = sub.drain()
    after = await s.chat()
    assert after["last_turn_summary"] == "Fixed the flaky login test"
    assert after["updated_at"] == before["updated_at"]
    assert [(e.kind, e.chat.last_turn_summary) for e in events] == [
        (ChatWatchEventKind.summary_change, "Fixed the flaky login test")
    ]
    [request] = cheap.requests
    assert request.allow_tools is False and request.options.max_output_tokens == 64
    prompt = str(request.messages[1])
    assert "waits for the user" in prompt and "waiting for the login form" in prompt

    # The same label again: nothing to announce.
    with s.hub.owner(s.owner.id) as sub:
        await update_turn_summary(
            s.ctx(settings, Factory(gpt_4o_mini=cheap), uuid.uuid4()), ChatStatus.waiting
        )
        assert sub.drain() == []


async def test_turn_summary_describes_the_row_the_finish_wrote(
    db: Database, settings: Settings
) -> None:
    """The worker hands over the finishing transaction's row; the chat may have moved on
    since (here: its error cleared), and the summary still describes the finished turn."""
    s = await setup(db, settings)
    finished = dict(await s.chat())
    finished["last_error"] = {"message": "the provider said no", "kind": "generic"}
    cheap = FakeModel("openai", "Hit a provider error")
    await update_turn_summary(
        s.ctx(settings, Factory(gpt_4o_mini=cheap), uuid.uuid4()), ChatStatus.error, finished
    )
    [request] = cheap.requests
    assert "The error: the provider said no" in str(request.messages[1])
    assert (await s.chat())["last_turn_summary"] == "Hit a provider error"


@pytest.mark.parametrize("same_config", [True, False])
async def test_turn_summary_reuses_the_model_the_turn_resolved(
    db: Database, settings: Settings, same_config: bool
) -> None:
    """The chat's own model comes from the turn when the chat still names the config the turn
    resolved. That config is deleted after the turn resolved it: a fresh read would find no
    model at all. A chat that names another config since has that one read."""
    s = await setup(db, settings)
    turns = FakeModel("openai", "Fixed the login test")
    other = FakeModel("openai", "Answered on the other model")
    factory = Factory(gpt_4o_mini=FakeModel("openai", failure()), gpt_4o=turns, o3=other)
    ctx = s.ctx(settings, factory, uuid.uuid4())
    async with db.read() as conn:
        ctx.model = await resolve_model(
            conn, s.config_id, s.owner.id, secrets=db.secrets, client_factory=factory
        )
    if not same_config:
        later = await seed_model_config(db, model="o3", is_default=False)
        await s.set(last_model_config_id=later)
    async with db.write() as conn:
        await conn.execute(
            chat_model_configs.update()
            .where(chat_model_configs.c.id == s.config_id)
            .values(deleted=True)
        )
    await update_turn_summary(ctx, ChatStatus.waiting)
    label = (await s.chat())["last_turn_summary"]
    if same_config:
        assert label == "Fixed the login test"
        # the turn's client, the cheap model, then (once that failed) the summary's own
        # client of the turn's model
        assert factory.models_built == ["gpt-4o", "gpt-4o-mini", "gpt-4o"]
        assert len(turns.requests) == 1 and other.requests == []
    else:
        assert label == "Answered on the other model"
        assert turns.requests == []


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (ChatStatus.waiting, "Finished latest turn"),
        (ChatStatus.pending, "Still working on request"),
        (ChatStatus.requires_action, "Waiting for user input"),
        (ChatStatus.error, "Hit an error"),
        (ChatStatus.paused, "Updated chat status"),
    ],
)
async def test_turn_summary_fallbacks(
    db: Database, settings: Settings, status: ChatStatus, label: str
) -> None:
    s = await setup(db, settings)
    factory = Factory(gpt_4o_mini=FakeModel("openai", failure()), gpt_4o=FakeModel("o", "..."))
    with s.hub.owner(s.owner.id) as sub:
        await update_turn_summary(s.ctx(settings, factory, uuid.uuid4()), status)
        [event] = sub.drain()
    assert event.kind == ChatWatchEventKind.summary_change
    assert (await s.chat())["last_turn_summary"] == label


async def test_turn_summary_for_a_missing_chat_is_a_no_op(db: Database, settings: Settings) -> None:
    s = await setup(db, settings)
    ctx = s.ctx(settings, Factory(), uuid.uuid4())
    ctx.chat_id = uuid.uuid4()
    await update_turn_summary(ctx, ChatStatus.waiting)
    await maybe_generate_title(ctx)
    assert (await s.chat())["last_turn_summary"] is None
