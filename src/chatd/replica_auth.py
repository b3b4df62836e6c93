"""Tokens one replica presents when it calls another's internal endpoints.

The replicas of a database share a secret (:func:`chatd.store.replicas.replica_secret`); a
token names the calling replica and when it stops being valid, and carries an HMAC-SHA256
of both under that secret. Only a replica that can read the database can make one, and a
token seen in transit is good for a short while only. A token is
``<replica id hex>.<expiry, unix seconds>.<signature, base64url>``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid

# Names what is signed, so that a MAC made with the same secret for some other purpose
# never passes as a replica token.
_PURPOSE = b"chatd-replica-call\x00"


def _mac(secret: bytes, replica_id: uuid.UUID, expires: int) -> bytes:
    message = _PURPOSE + replica_id.hex.encode() + b"." + str(expires).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def _signature(secret: bytes, replica_id: uuid.UUID, expires: int) -> bytes:
    return base64.urlsafe_b64encode(_mac(secret, replica_id, expires)).rstrip(b"=")


def sign(secret: bytes, replica_id: uuid.UUID, expires_at: dt.datetime) -> str:
    """A token for ``replica_id`` valid until ``expires_at`` (to the second, rounded down)."""
    expires = int(expires_at.timestamp())
    return f"{replica_id.hex}.{expires}.{_signature(secret, replica_id, expires).decode()}"


def verify(secret: bytes, token: str, now: dt.datetime) -> uuid.UUID | None:
    """The calling replica's id when ``token`` was signed with ``secret`` and has not expired
    at ``now``; None for anything else (malformed, forged, altered or expired)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    raw_id, raw_expires, raw_signature = parts
    try:
        replica_id = uuid.UUID(hex=raw_id)
        expires = int(raw_expires)
        signature = raw_signature.encode("ascii")
    except ValueError:  # UnicodeEncodeError too
        return None
    # Only the spelling sign() gives is accepted: another spelling of the same id, expiry or
    # signature bytes is not the token that was signed.
    if raw_id != replica_id.hex or raw_expires != str(expires):
        return None
    if not hmac.compare_digest(signature, _signature(secret, replica_id, expires)):
        return None
    if now.timestamp() >= expires:
        return None
    return replica_id
