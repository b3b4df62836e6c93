"""Stream sequence numbers: one strictly increasing number per event of a chat's stream.

A logged event (:mod:`chatd.store.stream_log`) is numbered ``n`` by the database, one after
another per chat. On the wire it is ``n << PART_BITS``; the streamed parts (and retries) of a
turn, which are never logged, come after the last logged event their replica delivered, as
``(n << PART_BITS) + i`` for ``i = 1, 2, ...``. So one number orders every event a client
receives, logged or not, and says which logged event it follows.
"""

from __future__ import annotations

PART_BITS = 24
PART_MASK = (1 << PART_BITS) - 1


def durable_seq(n: int) -> int:
    """The wire number of logged event ``n``."""
    return n << PART_BITS


def logged_part(seq: int) -> int:
    """The logged event a wire number follows (or is)."""
    return seq >> PART_BITS


def part_index(seq: int) -> int:
    """0 for a logged event, else which part after it."""
    return seq & PART_MASK
