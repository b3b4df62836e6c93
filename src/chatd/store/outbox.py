"""The events a committed state change publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent

if TYPE_CHECKING:
    from chatd.store.stream_log import LoggedEvent


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
    # Set by chatd.store.stream_log.seal in the writing transaction: the events numbered and
    # logged, in order. The hub publishes these (an outbox with events must be sealed).
    sealed: bool = False
    logged: list[LoggedEvent] = field(default_factory=list)

    def add_status(self, event: ChatStreamEvent) -> None:
        """A ``status`` event (its number, given when sealed, orders it among the chat's)."""
        self.stream.append(event)

    @property
    def has_events(self) -> bool:
        return bool(self.stream or self.watch)

    def extend(self, other: Outbox) -> None:
        assert not other.sealed, "seal the combined outbox, not its parts"
        self.stream.extend(other.stream)
        self.watch.extend(other.watch)
        self.wake_workers = self.wake_workers or other.wake_workers
        self.history_refresh = self.history_refresh or other.history_refresh
