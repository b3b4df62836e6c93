"""Numbering outboxes as :func:`chatd.store.stream_log.seal` does, without a database, for
tests of the hub alone."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

from chatd.sdk.chats import ChatMessage, ChatMessageRole, ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamStatus
from chatd.store.outbox import Outbox
from chatd.store.seqs import durable_seq
from chatd.store.stream_log import STREAM, WATCH, LoggedEvent

OWNER = uuid.UUID(int=7)


def message_event(
    chat_id: uuid.UUID, message_id: int, role: ChatMessageRole = ChatMessageRole.user
) -> ChatStreamEvent:
    return ChatStreamEvent(
        type=ChatStreamEventType.message,
        chat_id=chat_id,
        message=ChatMessage(
            id=message_id,
            chat_id=chat_id,
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            role=role,
        ),
    )


def status_event(chat_id: uuid.UUID, status: ChatStatus) -> ChatStreamEvent:
    return ChatStreamEvent(
        type=ChatStreamEventType.status, chat_id=chat_id, status=ChatStreamStatus(status=status)
    )


class FakeLog:
    def __init__(self) -> None:
        self.positions: defaultdict[uuid.UUID, int] = defaultdict(int)
        self.events: list[LoggedEvent] = []

    def seal(self, outbox: Outbox, status: str = "waiting") -> Outbox:
        outbox.sealed = True
        for event in outbox.stream:
            self.positions[event.chat_id] += 1
            seq = self.positions[event.chat_id]
            event.seq = durable_seq(seq)
            refresh = outbox.history_refresh and event.type == "message"
            logged = LoggedEvent(
                event.chat_id, seq, OWNER, STREAM, status, refresh, event.model_dump_json(), event
            )
            outbox.logged.append(logged)
        for owner, watch_event in outbox.watch:
            chat_id = watch_event.chat.id
            self.positions[chat_id] += 1
            seq = self.positions[chat_id]
            logged = LoggedEvent(
                chat_id,
                seq,
                owner,
                WATCH,
                status,
                False,
                watch_event.model_dump_json(),
                watch_event,
            )
            outbox.logged.append(logged)
        self.events.extend(outbox.logged)
        return outbox
