"""Manual titles: regenerate (saved) and propose (not saved) (engine-behaviour §15.2).

The prompt reads a window of the conversation (the first and last 50 visible messages): the
primary objective (the first user message), a sample (that message plus the last three turns,
naming how many were left out) and the latest message.
"""

from __future__ import annotations

import uuid

from chatd.engine.quickgen import QuickGen, generate_short
from chatd.engine.titles import TITLE_INSTRUCTIONS, TITLE_MAX_TOKENS, message_text, normalise_title
from chatd.llm.types import Message, SystemMessage, TextContent, UserMessage
from chatd.sdk.chats import Chat
from chatd.store import stream_log
from chatd.store import titles as store
from chatd.store.chats import get_chat_row
from chatd.store.outbox import Outbox
from chatd.store.sql import RowDict
from chatd.store.transition_steps import ChatNotFound
from chatd.store.usage_limits import check_spend

WINDOW_EDGE = 50
SAMPLE_TURNS = 3
SAMPLE_RUNES = 6000
LATEST_RUNES = 1000
OBJECTIVE_RUNES = 1000


def title_prompt(rows: list[RowDict]) -> list[Message] | None:
    """The regeneration prompt, or ``None`` when the window holds no text at all."""
    spoken = [(row["role"], message_text(row["content"])) for row in rows]
    spoken = [(role, text) for role, text in spoken if text and role in ("user", "assistant")]
    if not spoken:
        return None
    turn_starts = [i for i, (role, _) in enumerate(spoken) if role == "user"] or [0]
    first = turn_starts[0]
    recent = turn_starts[-SAMPLE_TURNS:][0]
    omitted = len([i for i in turn_starts if first < i < recent])
    lines = [f"{_speaker(spoken[first][0])}: {spoken[first][1]}"]
    if omitted:
        lines.append(f"[{omitted} earlier turn(s) left out]")
    lines += [f"{_speaker(role)}: {text}" for role, text in spoken[max(recent, first + 1) :]]
    sample = "\n".join(lines)[:SAMPLE_RUNES]
    latest_role, latest_text = spoken[-1]
    body = (
        f"Primary objective:\n{spoken[first][1][:OBJECTIVE_RUNES]}\n\n"
        f"Conversation sample:\n{sample}\n\n"
        f"Latest message ({_speaker(latest_role)}):\n{latest_text[:LATEST_RUNES]}"
    )
    return [SystemMessage(TITLE_INSTRUCTIONS), UserMessage([TextContent(body)])]


def _speaker(role: str) -> str:
    return "User" if role == "user" else "Agent"


async def propose_title(gen: QuickGen, chat_id: uuid.UUID) -> str | None:
    """A fresh title for the chat (``None`` when it has nothing to name yet).

    Raises :class:`~chatd.engine.quickgen.GenerationFailed` when no model answered."""
    async with gen.db.read() as conn:
        chat = await get_chat_row(conn, chat_id)
        rows = await store.title_window(conn, chat_id, WINDOW_EDGE)
    if chat is None:
        raise ChatNotFound(str(chat_id))
    prompt = title_prompt(rows)
    if prompt is None:
        return None
    return await generate_short(
        gen, chat, prompt, max_output_tokens=TITLE_MAX_TOKENS, clean=normalise_title
    )


async def regenerate_title(
    gen: QuickGen, chat_id: uuid.UUID, owner_id: uuid.UUID
) -> tuple[Chat, Outbox]:
    """Mark the chat, generate outside any transaction, then write and unmark.

    Raises ``TitleRegenerationBusy``, ``ChatNotFound`` or ``UsageLimitExceeded`` (the owner's
    spend is checked in the same transaction) before generating; the mark is
    released even when generation fails (the error then propagates)."""
    async with gen.db.write() as conn:
        lock = await store.lock_for_regeneration(conn, gen.db.now(), chat_id)
        await check_spend(conn, owner_id, gen.db.now())
    title: str | None = None
    try:
        title = await propose_title(gen, chat_id)
    finally:
        async with gen.db.write() as conn:
            chat, outbox = await store.finish_regeneration(conn, lock, title)
            await stream_log.seal(conn, outbox, gen.db.now())
    return chat, outbox
