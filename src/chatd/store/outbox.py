"""The events a committed state change publishes."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent

_stamps = itertools.count(1)


def next_stamp() -> int:
    """A number greater than every one handed out before in this process.

    Two transactions that each take one while holding a chat's row lock (SQLite: the writer
    lock) are ordered by their stamps the way they committed, whatever order their events are
    published in afterwards.
    """
    return next(_stamps)


@dataclass
class Outbox:
    """Collected inside a transaction; published only after it commits."""

    stream: list[ChatStreamEvent] = field(default_factory=list)
    # (owner id, event): watch events go to the chat owner's channel.
    watch: list[tuple[uuid.UUID, ChatWatchEvent]] = field(default_factory=list)
    # A chat became pending: workers should look for work now.
    wake_workers: bool = False
    # The ``message`` events re-send the whole visible history (after an edit): stream
    # subscribers pass them on even when they already sent those ids.
    history_refresh: bool = False
    # ``next_stamp()`` when its last status event was added, under the chat's row lock
    # (0: none, or built outside a transaction). The hub drops a status older than one it
    # already published for the chat; the worker's control channel ignores a stopping status
    # written before it claimed the chat.
    stamp: int = 0

    def add_status(self, event: ChatStreamEvent) -> None:
        """A ``status`` event; call with the chat's row locked by the writing transaction."""
        self.stream.append(event)
        self.stamp = next_stamp()

    def extend(self, other: Outbox) -> None:
        self.stream.extend(other.stream)
        self.watch.extend(other.watch)
        self.wake_workers = self.wake_workers or other.wake_workers
        self.history_refresh = self.history_refresh or other.history_refresh
        self.stamp = max(self.stamp, other.stamp)
