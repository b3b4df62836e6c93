"""The in-memory counters behind the throttles: their arithmetic and their bounded memory."""

from __future__ import annotations

import uuid

from chatd.api.login_throttle import FailureCounter
from chatd.api.rate_limit import TokenBuckets
from tests.api.abuse_helpers import ManualClock


def test_lockouts_grow_up_to_the_cap() -> None:
    counter = FailureCounter(2, 60.0, growth=3.0, max_lockout=500.0)
    now = 0.0
    lockouts = []
    for _ in range(4):
        assert counter.fail("k", now) is None
        lockout = counter.fail("k", now)
        assert lockout is not None and counter.retry_after("k", now) == lockout
        lockouts.append(lockout)
        now += lockout
        assert counter.retry_after("k", now) is None
    assert lockouts == [60.0, 180.0, 500.0, 500.0]
    counter.reset("k")
    counter.fail("k", now)
    assert counter.fail("k", now) == 60.0


def test_running_attempts_count_against_the_limit() -> None:
    counter = FailureCounter(3, 60.0)
    counter.fail("k", 0.0)
    counter.begin("k", 0.0)
    assert counter.retry_after("k", 0.0) is None
    counter.begin("k", 0.0)
    assert counter.retry_after("k", 0.0) == 1.0  # until the running attempts are decided
    counter.end("k")
    assert counter.retry_after("k", 0.0) is None


def test_a_disabled_counter_counts_nothing() -> None:
    counter = FailureCounter(0, 60.0)
    for _ in range(100):
        counter.begin("k", 0.0)
        assert counter.fail("k", 0.0) is None
    assert counter.retry_after("k", 0.0) is None and len(counter) == 0


def test_failure_keys_are_bounded_and_a_flood_of_names_unlocks_nothing() -> None:
    counter = FailureCounter(2, 60.0, max_keys=100)
    counter.fail("victim", 0.0)
    counter.fail("victim", 0.0)  # locked out until 60
    for i in range(1_000):
        counter.fail(f"name-{i}", 1.0)
        assert len(counter) <= 100
    assert counter.retry_after("victim", 30.0) == 30.0
    # Keys whose failures have left the window are dropped first.
    counter.fail("late", 1.0)
    for i in range(1_000):
        counter.fail(f"later-{i}", 70.0)
        assert len(counter) <= 100


def test_token_bucket_refills_at_the_rate() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(per_minute=60, burst=3, clock=clock)
    user, other = uuid.uuid4(), uuid.uuid4()
    assert [buckets.take(user) for _ in range(3)] == [None] * 3
    assert buckets.take(user) == 1.0
    assert buckets.take(other) is None  # buckets are per user
    clock.advance(0.5)
    assert buckets.take(user) == 0.5
    clock.advance(0.5)
    assert buckets.take(user) is None
    clock.advance(3600)  # refills only up to the burst
    assert [buckets.take(user) for _ in range(4)][-1] is not None


def test_full_buckets_are_forgotten() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(per_minute=600, burst=10, clock=clock)
    for _ in range(5_000):
        buckets.take(uuid.uuid4())
        clock.advance(0.01)  # a bucket is full again 1 s after its last request
    assert len(buckets) < 2_100


def test_a_disabled_limit_never_refuses() -> None:
    buckets = TokenBuckets(per_minute=0, burst=1)
    user = uuid.uuid4()
    assert all(buckets.take(user) is None for _ in range(10_000))
    assert len(buckets) == 0
