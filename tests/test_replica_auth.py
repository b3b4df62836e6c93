"""The tokens replicas sign their calls to each other with (chatd.replica_auth)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import pytest

from chatd.replica_auth import sign, verify

SECRET = secrets.token_bytes(32)
REPLICA = uuid.uuid4()
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=60)


def test_a_token_names_its_replica_until_it_expires() -> None:
    token = sign(SECRET, REPLICA, LATER)
    assert verify(SECRET, token, NOW) == REPLICA
    assert verify(SECRET, token, LATER - dt.timedelta(seconds=1)) == REPLICA
    assert verify(SECRET, token, LATER) is None
    assert verify(SECRET, token, LATER + dt.timedelta(days=1)) is None


def test_a_token_signed_with_another_secret_is_refused() -> None:
    assert verify(secrets.token_bytes(32), sign(SECRET, REPLICA, LATER), NOW) is None


def test_a_token_for_another_replica_or_expiry_does_not_carry_over() -> None:
    """Each token's signature covers its replica and its expiry: swapping either in from
    another valid token breaks it."""
    other = uuid.uuid4()
    mine = sign(SECRET, REPLICA, LATER).split(".")
    theirs = sign(SECRET, other, LATER + dt.timedelta(hours=1)).split(".")
    assert verify(SECRET, ".".join([theirs[0], mine[1], mine[2]]), NOW) is None
    assert verify(SECRET, ".".join([mine[0], theirs[1], mine[2]]), NOW) is None
    assert verify(SECRET, ".".join([mine[0], mine[1], theirs[2]]), NOW) is None


def tampered(token: str) -> list[str]:
    replica, expires, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return [
        f"{replica}.{int(expires) + 3600}.{signature}",  # a later expiry
        f"{replica}.{expires}.{flipped}{signature[1:]}",  # one character of the signature
        f"{replica}.{expires}.{signature[:-1]}",  # a shorter signature
        f"{replica}.{expires}.{signature}=",  # padding: another spelling of the same bytes
        f"{replica}.{expires}.{signature}.",  # a fourth part
        f"{replica.upper()}.{expires}.{signature}",  # the same id spelt otherwise
        f"{uuid.UUID(hex=replica)}.{expires}.{signature}",  # with dashes
        f"{replica}.+{expires}.{signature}",  # the same expiry spelt otherwise
        f"{replica}.{expires}",
        f"{replica}.{expires}.é{signature}",
        "",
        "..",
    ]


@pytest.mark.parametrize("index", range(len(tampered(sign(SECRET, REPLICA, LATER)))))
def test_a_tampered_or_malformed_token_is_refused(index: int) -> None:
    token = tampered(sign(SECRET, REPLICA, LATER))[index]
    assert verify(SECRET, token, NOW) is None
