"""Seams for the abuse-resistance tests: a clock moved by hand and an argon2 hasher that counts
(and can hold) its calls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher

from chatd.security import password_hasher, use_password_hasher

HOLD_TIMEOUT = 60.0


class ManualClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that records every hash and verification it runs, how many run at
    once, and, while ``hold`` is clear, keeps each one waiting before it starts its work."""

    def __init__(self, **params: int) -> None:
        super().__init__(**params)
        self.verified: list[str] = []  # the hashes verified against
        self.hashed = 0
        self.active = 0
        self.max_active = 0
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        with self._running():
            self.hashed += 1
            return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._running():
            self.verified.append(hash if isinstance(hash, str) else hash.decode())
            return super().verify(hash, password)

    def reset(self) -> None:
        with self._lock:
            self.verified.clear()
            self.hashed = 0
            self.max_active = 0

    @contextmanager
    def _running(self) -> Iterator[None]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if not self.hold.wait(HOLD_TIMEOUT):
                raise TimeoutError("the test never released the hasher")
            yield
        finally:
            with self._lock:
                self.active -= 1


@contextmanager
def installed(hasher: PasswordHasher) -> Iterator[None]:
    """Use ``hasher`` for the block, then put the previous one back."""
    previous = password_hasher()
    use_password_hasher(hasher)
    try:
        yield
    finally:
        use_password_hasher(previous)


CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
