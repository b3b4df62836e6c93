"""Automatic titles and turn summaries (engine-behaviour §15.1, §15.3).

Both run beside the turn on a cheap model (:mod:`chatd.engine.quickgen`). Neither may hurt the
turn: every failure is logged and swallowed (a turn summary then falls back to a fixed label
per status).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from chatd.engine.models import ResolvedModel
from chatd.engine.quickgen import (
    Choices,
    GenerationFailed,
    QuickGen,
    generate_short,
    read_choices,
)
from chatd.engine.types import TurnContext
from chatd.llm.types import Message, SystemMessage, TextContent, UserMessage
from chatd.sdk.chats import ChatStatus
from chatd.store import convert
from chatd.store import titles as store
from chatd.store.chats import get_chat_row
from chatd.store.sql import Connection, RowDict
from chatd.store.workspace_context import is_context_message

log = structlog.get_logger(__name__)

TITLE_RUNES = 80
TITLE_WORDS = 6
DEFAULT_TITLE = "New Chat"
TITLE_MAX_TOKENS = 256
LABEL_MAX_TOKENS = 64
LABEL_MAX_WORDS = 5
INPUT_RUNES = 1000

_QUOTES = "\"'`\u2018\u2019\u201c\u201d\u00ab\u00bb"
_TRAILING_PUNCTUATION = ".,;:!?\u2026"
_SUBJECT_WORDS = frozenset({"i", "we", "the", "agent", "assistant", "ai"})

TITLE_INSTRUCTIONS = (
    "You name conversations between a user and a coding agent. Reply with a title only: "
    "2 to 8 words in sentence case that say what the user wants done. No quotes, no "
    "markdown, no trailing punctuation, nothing before or after the title."
)
LABEL_INSTRUCTIONS = (
    "You write the status label shown next to a coding agent's chat in a list. Reply with "
    "the label only: 2 to 5 words on what the agent's latest turn did or where it stands. "
    "Start with a verb or a noun, never with a subject such as 'I', 'The' or 'Agent'. No "
    "quotes and no trailing punctuation."
)
STATE_CONTEXT = {
    ChatStatus.waiting: "The agent finished its turn and waits for the user.",
    ChatStatus.pending: "The agent is about to continue with a queued request.",
    ChatStatus.requires_action: "The agent waits for the user to run a tool and send its result.",
    ChatStatus.error: "The turn stopped because of an error.",
}
FALLBACK_LABELS = {
    ChatStatus.waiting: "Finished latest turn",
    ChatStatus.pending: "Still working on request",
    ChatStatus.requires_action: "Waiting for user input",
    ChatStatus.error: "Hit an error",
}
FALLBACK_LABEL = "Updated chat status"


def title_from_text(text: str) -> str:
    """The fallback title: the first six words, an ellipsis if cut, at most 80 runes."""
    words = text.split()
    if not words:
        return DEFAULT_TITLE
    title = " ".join(words[:TITLE_WORDS])
    if len(words) > TITLE_WORDS:
        title += "…"
    return title[:TITLE_RUNES]


def message_text(content: Any) -> str:
    """The text parts of stored message content, joined by spaces."""
    if not isinstance(content, list):
        return ""
    texts = (
        str(p.get("text") or "").strip()
        for p in content
        if isinstance(p, dict) and p.get("type") == "text"
    )
    return " ".join(t for t in texts if t)


def _strip_quotes_and_spaces(text: str) -> str:
    return " ".join(text.replace("`", " ").split()).strip(_QUOTES + " ")


def normalise_title(text: str) -> str:
    """Trim, drop quotes and backticks, collapse whitespace, at most 80 runes."""
    return _strip_quotes_and_spaces(text)[:TITLE_RUNES].strip()


def normalise_label(text: str) -> str:
    """One short label: no quotes, no leading subject word, no trailing punctuation."""
    words = _strip_quotes_and_spaces(text).split()
    if len(words) > 1 and words[0].lower() in _SUBJECT_WORDS:
        words = words[1:]
    label = " ".join(words[:LABEL_MAX_WORDS]).rstrip(_TRAILING_PUNCTUATION + _QUOTES + " ")
    return label[:1].upper() + label[1:]


def fallback_titles(text: str) -> set[str]:
    """The titles a chat has before any generated one: blank, or the fallback from its first
    message (with "..." for sub-agents)."""
    fallback = title_from_text(text)
    return {"", DEFAULT_TITLE, fallback, fallback.replace("\u2026", "...")}


async def maybe_generate_title(ctx: TurnContext) -> None:
    """Started by the worker alongside a turn: a title for a chat still on its fallback."""
    if ctx.chat is not None and ctx.chat["last_turn_summary"] is not None:
        return  # a turn has ended before (each leaves a summary): not the first
    try:
        async with ctx.db.read() as conn:
            # The first turn's workspace context message may be stored meanwhile: not a turn.
            shown = await store.first_visible_messages(conn, ctx.chat_id, 3)
            shown = [row for row in shown if not is_context_message(row)]
            if len(shown) != 1 or shown[0]["role"] != "user":
                return  # not the first turn
            chat = ctx.chat or await get_chat_row(conn, ctx.chat_id)
        if chat is None:
            return
        text = message_text(shown[0]["content"])
        if not text or chat["title"].strip() not in fallback_titles(text):
            return
        prompt: list[Message] = [
            SystemMessage(TITLE_INSTRUCTIONS),
            UserMessage([TextContent(f"The user's first message:\n\n{text[:INPUT_RUNES]}")]),
        ]
        title = await generate_short(
            QuickGen.for_turn(ctx),
            chat,
            prompt,
            max_output_tokens=TITLE_MAX_TOKENS,
            clean=normalise_title,
        )
        outbox = await ctx.db.run_write(
            store.set_title_if_unchanged, ctx.db.now(), ctx.chat_id, chat["title"], title
        )
        ctx.hub.publish(outbox)
    except GenerationFailed:
        log.info("no model produced a title", chat_id=str(ctx.chat_id))
    except Exception:
        log.warning("automatic title failed", chat_id=str(ctx.chat_id), exc_info=True)


async def update_turn_summary(
    ctx: TurnContext, status: ChatStatus, finished: Mapping[Any, Any] | None = None
) -> None:
    """Started by the worker after the finishing transaction: ``last_turn_summary``.

    ``finished``: the chat row as that transaction wrote it (None: read it here).
    """
    try:
        gen = QuickGen.for_turn(ctx)
        reads = await ctx.db.run_read(_summary_reads, ctx.chat_id, finished, gen, ctx.model)
        if reads is None:
            return
        chat, recent, choices = reads
        label = FALLBACK_LABELS.get(status, FALLBACK_LABEL)
        try:
            label = await generate_short(
                gen,
                chat,
                _label_prompt(chat, recent, status),
                max_output_tokens=LABEL_MAX_TOKENS,
                clean=normalise_label,
                choices=choices,
            )
        except GenerationFailed:
            log.info("turn summary fell back", chat_id=str(ctx.chat_id), status=status.value)
        outbox = await ctx.db.run_write(store.set_turn_summary, ctx.db.now(), ctx.chat_id, label)
        ctx.hub.publish(outbox)
    except Exception:
        log.warning("turn summary failed", chat_id=str(ctx.chat_id), exc_info=True)


async def _summary_reads(
    conn: Connection,
    chat_id: uuid.UUID,
    finished: Mapping[Any, Any] | None,
    gen: QuickGen,
    model: ResolvedModel | None,
) -> tuple[Mapping[Any, Any], list[RowDict], Choices] | None:
    """What a turn summary is made from, in one read transaction (None: the chat is gone)."""
    chat = finished if finished is not None else await get_chat_row(conn, chat_id)
    if chat is None:
        return None
    recent = await store.last_visible_messages(conn, chat_id, 20)
    return chat, recent, await read_choices(conn, gen, chat, model)


def _label_prompt(
    chat: Mapping[Any, Any], recent: list[RowDict], status: ChatStatus
) -> list[Message]:
    state = STATE_CONTEXT.get(status, f"The chat's status is now {status.value}.")
    error = convert.chat_error(chat["last_error"])
    if status == ChatStatus.error and error is not None:
        state += f" The error: {error.message}"
    request = reply = ""
    for row in recent:
        text = message_text(row["content"])
        if row["role"] == "user" and text:
            request = text[:INPUT_RUNES]
        elif row["role"] == "assistant" and text:
            reply = text[-INPUT_RUNES:]
    body = (
        f"State: {state}\n\nThe user's latest request:\n{request or '(none)'}\n\n"
        f"The agent's latest reply:\n{reply or '(none)'}"
    )
    return [SystemMessage(LABEL_INSTRUCTIONS), UserMessage([TextContent(body)])]
