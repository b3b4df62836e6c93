"""Notifications sent inside a write transaction, delivered only if it commits.

:func:`notify` is how a state change announces itself to the other replicas: on PostgreSQL it
runs ``SELECT pg_notify(channel, payload)`` on the transaction's own connection, so the
server delivers the notification when the transaction commits and never when it rolls back.
SQLite has no LISTEN/NOTIFY; there the notification is kept on the transaction's connection
and handed, after the commit, to the sinks registered on the database
(:meth:`chatd.store.db.Database.add_notification_sink`), which is how the in-memory pub/sub
gets it. Either way identical notifications (same channel, same payload) in one transaction
are delivered once, as PostgreSQL does.

Channel names and payloads are checked the same way on both backends, before anything is sent:

- a channel name is 1 to 63 characters out of ``A-Z a-z 0-9 _ . : -`` (PostgreSQL truncates
  longer identifiers in ``LISTEN``, so a longer name would listen on another channel than the
  one ``pg_notify`` sends to; the character set keeps names safe to quote as identifiers);
- a payload is text (``str``, or ``bytes`` holding UTF-8) without NUL characters, under
  :data:`MAX_PAYLOAD_BYTES` bytes once encoded: PostgreSQL refuses 8000 bytes and more.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from chatd.store.errors import StoreError
from chatd.store.sql import Connection

# PostgreSQL's NOTIFY_PAYLOAD_MAX_LENGTH is 8000 bytes, and a payload must be shorter than it.
MAX_PAYLOAD_BYTES = 7999
# NAMEDATALEN - 1: the longest identifier PostgreSQL keeps whole.
MAX_CHANNEL_LENGTH = 63
_CHANNEL = re.compile(rf"[A-Za-z0-9_.:\-]{{1,{MAX_CHANNEL_LENGTH}}}")

_PG_NOTIFY = sa.select(
    sa.func.pg_notify(
        sa.bindparam("channel", type_=sa.String), sa.bindparam("payload", type_=sa.String)
    ).label("sent")
)


class NotificationError(ValueError):
    """A channel name or a payload that cannot be sent (nothing was sent)."""


class InvalidChannel(NotificationError):
    """The channel name is empty, too long, or has characters outside the allowed set."""


class InvalidPayload(NotificationError):
    """The payload is not text: bytes that are not UTF-8, or a NUL character."""


class PayloadTooLarge(NotificationError):
    """The payload is :data:`MAX_PAYLOAD_BYTES` bytes or longer once encoded."""


def check_channel(channel: str) -> str:
    """``channel`` when it is a valid channel name; :class:`InvalidChannel` otherwise."""
    if not isinstance(channel, str) or _CHANNEL.fullmatch(channel) is None:
        raise InvalidChannel(
            f"invalid channel name {channel!r}: use 1 to {MAX_CHANNEL_LENGTH} characters "
            "out of letters, digits, '_', '.', ':' and '-'"
        )
    return channel


def encode_payload(payload: bytes | str) -> bytes:
    """The payload as the UTF-8 bytes subscribers receive, after checking it can be sent."""
    if isinstance(payload, str):
        try:
            data = payload.encode()
        except UnicodeEncodeError as error:  # a lone surrogate
            raise InvalidPayload(f"the payload is not valid text: {error}") from None
    elif isinstance(payload, bytes | bytearray | memoryview):
        data = bytes(payload)
        try:
            data.decode()
        except UnicodeDecodeError as error:
            raise InvalidPayload(f"the payload is not UTF-8 text: {error}") from None
    else:
        raise InvalidPayload(f"the payload must be bytes or str, not {type(payload).__name__}")
    if b"\x00" in data:
        raise InvalidPayload("the payload holds a NUL character")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"the payload is {len(data)} bytes; at most {MAX_PAYLOAD_BYTES} can be sent "
            "(send a hint that tells the receiver what to read, not the data)"
        )
    return data


async def notify(conn: Connection, channel: str, payload: bytes | str) -> None:
    """Send ``payload`` on ``channel`` when the transaction of ``conn`` commits.

    On a PostgreSQL connection in autocommit (a read block, :meth:`Database.write_one`) it is
    sent at once. On SQLite only a write transaction can carry notifications.
    """
    check_channel(channel)
    data = encode_payload(payload)
    if conn.dialect_name == "postgresql":
        await conn.execute(_PG_NOTIFY, {"channel": channel, "payload": data.decode()})
        return
    if conn.notifications is None:
        raise StoreError("on SQLite, notifications are sent from a write transaction only")
    if (channel, data) not in conn.notifications:  # once, as PostgreSQL delivers them
        conn.notifications.append((channel, data))
