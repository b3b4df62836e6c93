"""Passwords (argon2) and API tokens (``<id>-<secret>``, only a SHA-256 of the secret stored).

Argon2 is deliberately expensive: with the default parameters one hash or verification takes
64 MiB and ~170 ms of one core. Every one of them runs on a worker thread behind one capacity
limiter per event loop (:func:`limit_hashing`, ``CHATD_PASSWORD_HASH_CONCURRENCY``), so a burst
of logins queues as coroutines, which hold no argon2 memory, instead of each taking 64 MiB at
once. A login for an account that does not exist, or has no password, verifies against a
dummy hash made with the current hasher, so it costs what a real one costs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import string
import weakref

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

DEFAULT_HASH_CONCURRENCY = 2

_hasher = PasswordHasher()
_concurrency = DEFAULT_HASH_CONCURRENCY
# One limiter per event loop: tests run one loop each, the server one in all.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)
# A hash of a random password, made by ``_dummy[0]`` (the hasher it belongs to).
_dummy: tuple[PasswordHasher, str] | None = None


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Replace the argon2 hasher (tests use cheap parameters or count calls through it)."""
    global _hasher, _dummy
    _hasher = hasher
    _dummy = None


def password_hasher() -> PasswordHasher:
    return _hasher


def limit_hashing(concurrency: int) -> None:
    """At most ``concurrency`` argon2 hashes and verifications run at once (per event loop)."""
    global _concurrency
    if concurrency < 1:
        raise ValueError("the password hash concurrency must be at least 1")
    _concurrency = concurrency
    for limiter in _limiters.values():
        limiter.total_tokens = concurrency


def hashing_limiter() -> anyio.CapacityLimiter:
    """The limiter of the running event loop (its statistics tell who runs and who waits)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(_concurrency)
    return limiter


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=hashing_limiter())


async def prepare_dummy_hash() -> str:
    """The dummy hash for the current hasher, made on first use (the server makes it on start,
    so the first unknown login is not the one that pays for it)."""
    global _dummy
    hasher = _hasher
    if _dummy is None or _dummy[0] is not hasher:
        hashed = await anyio.to_thread.run_sync(
            hasher.hash, random_string(KEY_SECRET_LENGTH), limiter=hashing_limiter()
        )
        if hasher is _hasher:
            _dummy = (hasher, hashed)
        return hashed
    return _dummy[1]


async def verify_password(hashed: str | None, password: str) -> bool:
    """Whether ``password`` matches ``hashed``. Without a hash (no such account, or one without a
    password) this verifies against the dummy hash and answers False: the same work either way."""
    if not hashed:
        await _verify(await prepare_dummy_hash(), password)
        return False
    return await _verify(hashed, password)


async def _verify(hashed: str, password: str) -> bool:
    hasher = _hasher

    def check() -> bool:
        try:
            return hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check, limiter=hashing_limiter())


_ALPHABET = string.ascii_letters + string.digits
KEY_ID_LENGTH = 10
KEY_SECRET_LENGTH = 22


def random_string(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_token() -> tuple[str, str, bytes]:
    """A fresh token: (key id, the full token to hand out, hash of the secret to store)."""
    key_id = random_string(KEY_ID_LENGTH)
    secret = random_string(KEY_SECRET_LENGTH)
    return key_id, f"{key_id}-{secret}", hash_secret(secret)


# A workspace agent's token: its own format, never taken for a user's API key (which
# :func:`split_token` parses), and stored only as its SHA-256 (found by that hash).
AGENT_TOKEN_PREFIX = "chatd-agent-"
AGENT_TOKEN_MAX = 128


def new_agent_token() -> tuple[str, bytes]:
    """A fresh workspace agent token and the hash to store."""
    token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_secret(token)


def agent_token_hash(token: str) -> bytes | None:
    """The hash to look a presented agent token up by (None: not an agent token)."""
    if not token.startswith(AGENT_TOKEN_PREFIX) or len(token) > AGENT_TOKEN_MAX:
        return None
    return hash_secret(token)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_token(token: str) -> tuple[str, str] | None:
    key_id, sep, secret = token.partition("-")
    if not sep or len(key_id) != KEY_ID_LENGTH or len(secret) != KEY_SECRET_LENGTH:
        return None
    return key_id, secret


def secret_matches(stored: bytes, secret: str) -> bool:
    return hmac.compare_digest(stored, hash_secret(secret))
