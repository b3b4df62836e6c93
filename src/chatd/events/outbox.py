"""The events a committed state change publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent


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

    def extend(self, other: Outbox) -> None:
        self.stream.extend(other.stream)
        self.watch.extend(other.watch)
        self.wake_workers = self.wake_workers or other.wake_workers
        self.history_refresh = self.history_refresh or other.history_refresh
