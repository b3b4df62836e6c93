"""Failed-login throttling, in memory: per account name and per client address.

A key (an account name as typed, lowercased; or a client address) that collects ``limit``
failures within ``window`` seconds is locked out: every login for it answers 429, the right
password too, until the lockout ends. An account's lockouts grow: each one lasts ``growth``
times the one before (up to ``max_lockout``) until a successful login resets it.

Attempts still running count against the limit too, so a burst of concurrent guesses cannot
slip past it while their verifications wait for argon2. Names are never looked up first:
an account that does not exist is throttled exactly like one that does, so a 429 tells
nothing about which accounts exist.

The counters are per process; replicas behind one address each keep their own.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Clock = Callable[[], float]
# Keys tracked per counter before idle ones are dropped (each costs a few hundred bytes).
MAX_KEYS = 100_000
# Longer names are counted by their start (an email address has at most 254 characters).
MAX_KEY_LENGTH = 320


class Throttled(Exception):
    def __init__(self, retry_after: float, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.reason = reason  # "account" or "address"


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    locked_until: float = 0.0
    lockouts: int = 0


class FailureCounter:
    """Failures per key in a sliding window; ``limit`` of them lock the key out."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        growth: float = 1.0,
        max_lockout: float | None = None,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.growth = growth
        self.max_lockout = max(window, max_lockout or window)
        self.max_keys = max_keys
        self._records: OrderedDict[str, _Record] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        record = self._records.get(key)
        if record is None or not self.enabled:
            return None
        if record.locked_until > now:
            return record.locked_until - now
        self._expire(record, now)
        if len(record.failures) + record.in_flight >= self.limit:
            # Attempts are running that would lock the key if they fail: try again once they
            # are decided (a second), not when the oldest failure leaves the window.
            return 1.0
        return None

    def begin(self, key: str, now: float) -> None:
        if self.enabled:
            self._record(key, now).in_flight += 1

    def end(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None and record.in_flight > 0:
            record.in_flight -= 1

    def fail(self, key: str, now: float) -> float | None:
        """Count a failure; the length of the lockout it starts, if it starts one."""
        if not self.enabled:
            return None
        record = self._record(key, now)
        self._expire(record, now)
        record.failures.append(now)
        if len(record.failures) < self.limit:
            return None
        lockout = min(self.window * self.growth**record.lockouts, self.max_lockout)
        record.lockouts += 1
        record.locked_until = now + lockout
        record.failures.clear()
        return lockout

    def reset(self, key: str) -> None:
        record = self._records.get(key)
        if record is None:
            return
        if record.in_flight:
            record.failures.clear()
            record.locked_until = 0.0
            record.lockouts = 0
        else:
            del self._records[key]

    def __len__(self) -> int:
        return len(self._records)

    def _expire(self, record: _Record, now: float) -> None:
        horizon = now - self.window
        while record.failures and record.failures[0] <= horizon:
            record.failures.popleft()

    def _record(self, key: str, now: float) -> _Record:
        record = self._records.get(key)
        if record is None:
            if len(self._records) >= self.max_keys:
                self._make_room(now)
            record = self._records[key] = _Record()
        else:
            self._records.move_to_end(key)
        return record

    def _make_room(self, now: float) -> None:
        """Drop the keys that no longer matter; if that is not enough, the least recently used
        ones that are not locked out (a flood of new names must not unlock an account), and
        only then locked ones."""
        for key in [k for k, r in self._records.items() if self._forgettable(r, now)]:
            del self._records[key]
        target = int(self.max_keys * 0.9)
        if len(self._records) < target:
            return
        excess = len(self._records) - target
        unlocked = [k for k, r in self._records.items() if r.locked_until <= now][:excess]
        for key in unlocked:
            del self._records[key]
        while len(self._records) > target:
            self._records.popitem(last=False)

    def _forgettable(self, record: _Record, now: float) -> bool:
        self._expire(record, now)
        # A lockout's length is remembered for max_lockout after it ends.
        return (
            not record.failures
            and not record.in_flight
            and record.locked_until + (self.max_lockout if record.lockouts else 0) <= now
        )


@dataclass(frozen=True)
class LoginLimits:
    per_account: int = 5
    per_address: int = 20
    window: float = 900.0
    account_growth: float = 2.0
    max_lockout: float = 86400.0


class Attempt:
    """One login attempt under way: report how it went with :meth:`failed` or
    :meth:`succeeded`; leaving it without either counts nothing."""

    def __init__(self, throttle: LoginThrottle, account: str, address: str) -> None:
        self._throttle = throttle
        self.account = account
        self.address = address
        self.lockout: float | None = None  # set by a failure that started a lockout

    def failed(self) -> float | None:
        """Count the failure; the lockout it started (seconds), if any."""
        now = self._throttle.clock()
        by_account = self._throttle.accounts.fail(self.account, now)
        by_address = self._throttle.addresses.fail(self.address, now)
        self.lockout = max(by_account or 0, by_address or 0) or None
        return self.lockout

    def succeeded(self, *other_names: str) -> None:
        """Reset the account's count (under every name the account goes by)."""
        for name in {self.account, *(account_key(n) for n in other_names)}:
            self._throttle.accounts.reset(name)


class LoginThrottle:
    def __init__(self, limits: LoginLimits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.accounts = FailureCounter(
            limits.per_account,
            limits.window,
            growth=limits.account_growth,
            max_lockout=limits.max_lockout,
        )
        self.addresses = FailureCounter(limits.per_address, limits.window)

    @contextmanager
    def attempt(self, account: str, address: str) -> Iterator[Attempt]:
        """Admit one attempt, or raise :class:`Throttled` with when to come back."""
        key = account_key(account)
        now = self.clock()
        for counter, name, reason in (
            (self.addresses, address, "address"),
            (self.accounts, key, "account"),
        ):
            wait = counter.retry_after(name, now)
            if wait is not None:
                raise Throttled(wait, reason)
        self.accounts.begin(key, now)
        self.addresses.begin(address, now)
        try:
            yield Attempt(self, key, address)
        finally:
            self.accounts.end(key)
            self.addresses.end(address)


def account_key(login: str) -> str:
    """How an account name is counted: as typed, trimmed and lowercased (an email and a
    username of one account count apart: relating them would tell which accounts exist)."""
    return login.strip().lower()[:MAX_KEY_LENGTH]
