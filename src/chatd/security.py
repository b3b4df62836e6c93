"""Passwords (argon2) and API tokens (``<id>-<secret>``, only a SHA-256 of the secret stored)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the argon2 parameters (tests use cheap ones; production keeps the defaults)."""
    global _hasher
    _hasher = hasher


_ALPHABET = string.ascii_letters + string.digits
KEY_ID_LENGTH = 10
KEY_SECRET_LENGTH = 22


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(hashed: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    if not hashed:
        return False
    return await anyio.to_thread.run_sync(check)


def random_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_token() -> tuple[str, str, bytes]:
    """A fresh token: (key id, the full token to hand out, hash of the secret to store)."""
    key_id = random_string(KEY_ID_LENGTH)
    secret = random_string(KEY_SECRET_LENGTH)
    return key_id, f"{key_id}-{secret}", hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_token(token: str) -> tuple[str, str] | None:
    key_id, sep, secret = token.partition("-")
    if not sep or len(key_id) != KEY_ID_LENGTH or len(secret) != KEY_SECRET_LENGTH:
        return None
    return key_id, secret


def secret_matches(stored: bytes, secret: str) -> bool:
    return hmac.compare_digest(stored, hash_secret(secret))
