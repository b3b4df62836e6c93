"""Which live ``message`` events a stream client still needs (engine-behaviour §10.3).

A client is known to hold every message up to its cursor: the newest id it was sent (or the
``after_id`` it asked to start after). A live ``message`` at or below the cursor is a copy of
one it already has, typically a row the snapshot read that was published a moment later, and is
dropped. An edit's history refresh is the exception: it re-sends the visible history so the
client can rebuild its list, so it always passes and moves the cursor to the replacement.
"""

from __future__ import annotations

from chatd.events.delivery import Delivery, PartDelivery
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType


class MessageCursor:
    def __init__(self, last_message_id: int) -> None:
        self.last_message_id = last_message_id

    def admit(self, delivery: Delivery[ChatStreamEvent]) -> bool:
        """Whether to send this event; advances the cursor past the messages it sends."""
        if isinstance(delivery, PartDelivery):
            return True
        event = delivery.item
        if event.type != ChatStreamEventType.message or event.message is None:
            return True
        message_id = event.message.id
        if delivery.refresh:
            self.last_message_id = message_id
            return True
        if message_id <= self.last_message_id:
            return False
        self.last_message_id = message_id
        return True
