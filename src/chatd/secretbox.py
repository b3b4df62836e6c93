"""Secrets at rest: AES-256-GCM under the deployment's key, bound to where they are stored.

A key is 32 random bytes, written as base64url (``generate_key``; 43 characters, padding
optional). A :class:`SecretBox` holds the current key, which encrypts, and any number of older
keys, which only decrypt (during a rotation).

A ciphertext is self-describing text::

    enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>

``v1`` is the format (AES-256-GCM, 96-bit random nonce, 128-bit tag); the key id is the first
4 bytes of a SHA-256 of the key, in hex, so a value names the key that sealed it without
revealing it. Every value is sealed with a *binding*, a string naming the row and column it
belongs to (the caller chooses it); the binding and the header are the associated data, so a
ciphertext copied to another row, or re-labelled with another key id, fails to decrypt.

This module imports nothing of chatd's: the store (which knows the bindings) and the commands
that load keys both use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
KEY_CHARS = 43  # base64url of 32 bytes, without its one "=" of padding
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT = "v1"
PREFIX = f"enc:{FORMAT}:"
_CIPHERTEXT = re.compile(r"^enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]{38,})$")


class SecretError(Exception):
    """Base of this module's errors."""


class SecretKeyError(SecretError):
    """A configured key is malformed (its message says which and how)."""


class UnknownKey(SecretError):
    """A ciphertext names a key this box does not hold."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"sealed under key {key_id}, which is not configured")
        self.key_id = key_id


class DecryptionFailed(SecretError):
    """Not a ciphertext, or one that was altered or belongs to another binding."""


def generate_key() -> str:
    """A new random key, encoded as ``CHATD_SECRET_KEY`` and the key file expect it."""
    return encode_key(secrets.token_bytes(KEY_BYTES))


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def parse_key(text: str, source: str) -> bytes:
    """The 32 bytes of a base64url key (padding optional); ``source`` names it in errors."""
    hint = "(generate a key with `chatd secrets generate-key`)"
    cleaned = text.strip()
    if not cleaned:
        raise SecretKeyError(f"{source} is empty {hint}")
    if not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", cleaned):
        raise SecretKeyError(f"{source} is not base64url: use only A-Z a-z 0-9 - _ {hint}")
    unpadded = cleaned.rstrip("=")
    if len(unpadded) != KEY_CHARS:
        raise SecretKeyError(
            f"{source} must encode exactly {KEY_BYTES} bytes as {KEY_CHARS} base64url "
            f"characters, not {len(unpadded)} characters {hint}"
        )
    try:
        return base64.urlsafe_b64decode(unpadded + "=")
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{source} is not valid base64url {hint}") from None


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"chatd secret key id\0" + key).hexdigest()[:8]


def is_ciphertext(value: str) -> bool:
    """Whether ``value`` has the shape of a sealed value (any key)."""
    return _CIPHERTEXT.match(value) is not None


def key_id_of(value: str) -> str | None:
    """The key id a sealed value names (None: ``value`` is not a ciphertext)."""
    match = _CIPHERTEXT.match(value)
    return match.group(1) if match else None


class SecretBox:
    """Seals with the current key; opens with any key it holds."""

    def __init__(self, current: bytes, older: Iterable[bytes] = ()) -> None:
        self._ciphers: dict[str, AESGCM] = {}
        for key in (current, *older):
            if len(key) != KEY_BYTES:
                raise SecretKeyError(f"a key is {KEY_BYTES} bytes, not {len(key)}")
            self._ciphers.setdefault(key_id(key), AESGCM(key))
        self.key_id = key_id(current)

    @property
    def key_ids(self) -> frozenset[str]:
        """The ids of every key held (the current one and the older ones)."""
        return frozenset(self._ciphers)

    def seal(self, plaintext: str, binding: str) -> str:
        header = f"{PREFIX}{self.key_id}:"
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(
            nonce, plaintext.encode(), _associated(header, binding)
        )
        return header + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, value: str, binding: str) -> str:
        """The plaintext of ``value``; raises :class:`UnknownKey` or :class:`DecryptionFailed`."""
        match = _CIPHERTEXT.match(value)
        if match is None:
            raise DecryptionFailed("not a sealed value")
        kid, body = match.groups()
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownKey(kid)
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise DecryptionFailed("a sealed value that is not base64url") from None
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionFailed("a sealed value too short to hold a nonce and a tag")
        header = f"{PREFIX}{kid}:"
        try:
            plain = cipher.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated(header, binding)
            )
        except InvalidTag:
            raise DecryptionFailed(
                "the sealed value was altered or belongs to another row"
            ) from None
        return plain.decode()


def _associated(header: str, binding: str) -> bytes:
    return f"{header}{binding}".encode()
