"""User-driven chat state transitions (engine-behaviour §3.1: T5, T10, T12, T14-T16, T18).

Each function runs inside the caller's single ``db.write()`` transaction: it locks the chat row
first, re-checks that the change still applies, writes, and returns the events to publish once
the transaction has committed. Refusals are :class:`~chatd.store.transition_steps.TransitionError`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from chatd.sdk.chats import (
    Chat,
    ChatMessage,
    ChatMessagePart,
    ChatMessageRole,
    ChatQueuedMessage,
    ChatStatus,
    parts_json,
)
from chatd.store import convert
from chatd.store import messages as mq
from chatd.store.files import link_files
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.subagents import is_parked
from chatd.store.tables import chats
from chatd.store.tool_calls import (
    INTERRUPTED_BY_PROMOTION,
    INTERRUPTED_BY_USER,
    interrupt_pending_calls,
)
from chatd.store.transition_steps import (
    ChatArchived,
    MessageNotFound,
    NotUserMessage,
    QueuedMessageNotFound,
    QueueFull,
    Row,
    announce_status,
    insert_user_message,
    lock,
    message_event,
    promote_queue_head,
    publish_queue,
    publish_status,
    resolve_model,
    set_status,
)

MAX_QUEUE_SIZE = 20
# A message sent while the chat is in one of these is queued (as is one behind a non-empty queue).
BUSY = frozenset(
    s.value for s in (ChatStatus.pending, ChatStatus.running, ChatStatus.requires_action)
)


@dataclass(frozen=True)
class NewUserMessage:
    """A user message as sent or edited: converted parts and the files they name."""

    author_id: uuid.UUID
    content: list[ChatMessagePart]
    file_ids: list[uuid.UUID] = field(default_factory=list)
    model_config_id: uuid.UUID | None = None


@dataclass(frozen=True)
class SendOptions:
    mcp_server_ids: list[uuid.UUID] | None = None
    plan_mode: str | None = None  # None: unchanged; "": cleared
    interrupt: bool = False


@dataclass
class SendResult:
    message: ChatMessage | None = None
    queued_message: ChatQueuedMessage | None = None
    warnings: list[str] = field(default_factory=list)


async def send_message(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    new: NewUserMessage,
    options: SendOptions,
) -> tuple[SendResult, Outbox]:
    """Send: queue behind a busy chat, or start a turn (T14); ``interrupt`` also stops a run."""
    chat = await lock(conn, chat_id)
    if chat["archived"]:
        raise ChatArchived(str(chat_id))
    if options.plan_mode is not None:
        # Written without bumping updated_at (api-behaviour §5.6).
        await conn.execute(
            chats.update().where(chats.c.id == chat_id).values(plan_mode=options.plan_mode or None)
        )
    model_id = await resolve_model(conn, chat, new.model_config_id)
    if options.mcp_server_ids is not None:
        await conn.execute(
            chats.update()
            .where(chats.c.id == chat_id)
            .values(mcp_server_ids=[str(i) for i in options.mcp_server_ids], updated_at=now)
        )
    outbox = Outbox()
    result = SendResult()
    content = parts_json(new.content)
    queue_length = chat["queue_length"]
    if chat["status"] in BUSY or queue_length > 0:
        if queue_length >= MAX_QUEUE_SIZE:
            raise QueueFull(str(chat_id))
        result.queued_message = await mq.insert_queued(
            conn,
            now=now,
            chat_id=chat_id,
            content=content,
            model_config_id=model_id,
            created_by=new.author_id,
        )
        await publish_queue(conn, outbox, chat_id)
        # "Pending wins" (T18): only a running turn is stopped; the worker's finishing
        # transaction then promotes the queue head (T5 -> T4), or here, for a parked turn.
        if options.interrupt and is_parked(chat):
            await stop_parked(conn, now, chat, outbox, INTERRUPTED_BY_USER)
        elif options.interrupt and chat["status"] == ChatStatus.running:
            announce_status(outbox, await set_status(conn, now, chat_id, ChatStatus.waiting))
    else:
        message = await insert_user_message(
            conn,
            now,
            chat_id,
            content,
            model_id,
            new.author_id,
            model_is_current=chat["last_model_config_id"] == model_id,
        )
        written = await set_status(conn, now, chat_id, ChatStatus.pending)
        outbox.stream.append(message_event(message))
        announce_status(outbox, written)
        outbox.wake_workers = True
        result.message = message
    result.warnings = await link_files(conn, chat_id, new.file_ids)
    return result, outbox


async def edit_message(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    message_id: int,
    new: NewUserMessage,
) -> tuple[ChatMessage, list[str], Outbox]:
    """T15: replace a user message, dropping everything after it and the queue; pending."""
    chat = await lock(conn, chat_id)
    if chat["archived"]:
        raise ChatArchived(str(chat_id))
    edited = await mq.get_message_row(conn, chat_id, message_id)
    if edited is None:
        raise MessageNotFound(str(message_id))
    if edited["role"] != ChatMessageRole.user:
        raise NotUserMessage(str(message_id))
    if new.model_config_id is not None:
        model_id = await resolve_model(conn, chat, new.model_config_id)
    else:
        model_id = edited["model_config_id"] or chat["last_model_config_id"]
    await mq.soft_delete_from(conn, chat_id, message_id)
    message = await insert_user_message(
        conn,
        now,
        chat_id,
        parts_json(new.content),
        model_id,
        new.author_id,
        visibility=edited["visibility"],
    )
    await mq.clear_queue(conn, chat_id)
    written = await set_status(conn, now, chat_id, ChatStatus.pending)
    outbox = Outbox(wake_workers=True, history_refresh=True)
    # History refresh: the whole visible history (ending with the replacement) is re-sent as
    # ``message`` events; clients rebuild their list from it (soft-deleted rows are absent).
    outbox.stream.extend(message_event(m) for m in await mq.visible_messages(conn, chat_id))
    await publish_queue(conn, outbox, chat_id)
    announce_status(outbox, written)
    warnings = await link_files(conn, chat_id, new.file_ids)
    return message, warnings, outbox


async def interrupt(conn: Connection, now: dt.datetime, chat_id: uuid.UUID) -> tuple[Chat, Outbox]:
    """T5 running -> waiting; T12 requires_action -> waiting with synthetic results.

    Any other status is left as it is (T18: pending wins; idle chats stay idle).
    """
    chat = await lock(conn, chat_id)
    outbox = Outbox()
    status = chat["status"]
    if is_parked(chat):
        return await stop_parked(conn, now, chat, outbox, INTERRUPTED_BY_USER), outbox
    if status == ChatStatus.requires_action:
        synthetic = await interrupt_pending_calls(conn, now, chat, INTERRUPTED_BY_USER)
        outbox.stream.extend(message_event(m) for m in synthetic)
    if status not in (ChatStatus.running, ChatStatus.requires_action):
        return convert.chat(chat), outbox  # nothing written to the row
    written = await set_status(conn, now, chat_id, ChatStatus.waiting)
    return announce_status(outbox, written), outbox


async def close(conn: Connection, now: dt.datetime, chat_id: uuid.UUID) -> tuple[Chat, Outbox]:
    """Stop whatever the chat does for good (a sub-agent closed by its parent): its queue is
    dropped, a running turn interrupted (T5: its worker saves what it has), and the chat ends
    ``waiting`` whatever it was (an error is cleared)."""
    chat = await lock(conn, chat_id)
    outbox = Outbox()
    if chat["queue_length"]:
        await mq.clear_queue(conn, chat_id)
        await publish_queue(conn, outbox, chat_id)
    if chat["status"] == ChatStatus.waiting:
        return convert.chat(chat), outbox
    if chat["status"] == ChatStatus.requires_action:
        synthetic = await interrupt_pending_calls(conn, now, chat, INTERRUPTED_BY_USER)
        outbox.stream.extend(message_event(m) for m in synthetic)
    written = await set_status(conn, now, chat_id, ChatStatus.waiting)
    return announce_status(outbox, written), outbox


async def stop_parked(
    conn: Connection, now: dt.datetime, chat: Row, outbox: Outbox, why: str
) -> Chat:
    """Stop a turn parked waiting for sub-agents, as its worker's finish would an interrupted
    turn: its open calls answered with ``why``, then waiting, or pending when the queue
    head is promoted."""
    synthetic = await interrupt_pending_calls(conn, now, chat, why, dynamic_only=False)
    outbox.stream.extend(message_event(m) for m in synthetic)
    final = ChatStatus.waiting
    if not chat["archived"] and await promote_queue_head(conn, now, chat, outbox):
        final = ChatStatus.pending
    return announce_status(outbox, await set_status(conn, now, chat["id"], final))


async def delete_queued(conn: Connection, chat_id: uuid.UUID, queued_id: int) -> Outbox:
    """Remove one queued message (an unknown id changes nothing) and publish the queue."""
    await lock(conn, chat_id)
    await mq.delete_queued(conn, chat_id, queued_id)
    outbox = Outbox()
    await publish_queue(conn, outbox, chat_id)
    return outbox


async def promote_queued(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    queued_id: int,
    promoter_id: uuid.UUID,
) -> tuple[ChatMessage, Outbox]:
    """Promote a queued message (api-behaviour §7, V1).

    A running turn with a worker: the message moves to the queue front and the turn is stopped
    (waiting), so the worker's finishing transaction promotes it. The returned message is then
    not stored yet: it has id 0 and the content and model of the queued row.
    Otherwise (T16, T10): it becomes a user message now and the chat goes pending.
    """
    chat = await lock(conn, chat_id)
    if chat["archived"]:
        raise ChatArchived(str(chat_id))
    queued = await mq.get_queued_row(conn, chat_id, queued_id)
    if queued is None:
        raise QueuedMessageNotFound(str(queued_id))
    outbox = Outbox()
    if chat["status"] == ChatStatus.running and chat["worker_id"] is not None:
        await mq.move_queued_to_front(conn, chat_id, queued_id)
        written = await set_status(conn, now, chat_id, ChatStatus.waiting)
        await publish_queue(conn, outbox, chat_id)
        announce_status(outbox, written)
        pending_message = ChatMessage(
            id=0,
            chat_id=chat_id,
            created_by=promoter_id,
            model_config_id=queued["model_config_id"],
            created_at=now,
            role=ChatMessageRole.user,
            content=convert.parts(queued["content"]) or None,
        )
        return pending_message, outbox
    model_id = await resolve_model(conn, chat, queued["model_config_id"], strict=False)
    synthetic: list[ChatMessage] = []
    if chat["status"] == ChatStatus.requires_action or is_parked(chat):
        synthetic = await interrupt_pending_calls(
            conn, now, chat, INTERRUPTED_BY_PROMOTION, dynamic_only=not is_parked(chat)
        )
    await mq.delete_queued(conn, chat_id, queued_id)
    message = await insert_user_message(
        conn, now, chat_id, list(queued["content"]), model_id, promoter_id
    )
    changed = chat["status"] != ChatStatus.pending
    if changed:
        await set_status(conn, now, chat_id, ChatStatus.pending)
    await publish_queue(conn, outbox, chat_id)
    outbox.stream.extend(message_event(m) for m in [*synthetic, message])
    await publish_status(conn, outbox, chat_id, watch=changed)
    outbox.wake_workers = True
    return message, outbox
