"""The retry policy and loop (engine-behaviour §7) as pure code with an instant sleep."""

from __future__ import annotations

import asyncio

import pytest

from chatd.engine.retry import RetryPolicy, retry
from chatd.llm.types import ClassifiedError, ProviderError
from chatd.sdk.chats import ChatErrorKind
from chatd.settings import Settings

pytestmark = pytest.mark.anyio


def test_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy.from_settings(Settings())
    assert (policy.initial_delay, policy.max_delay, policy.max_attempts) == (1.0, 60.0, 25)
    assert [policy.delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    # Worst case before giving up: 24 waits.
    assert sum(policy.delay(n) for n in range(1, 25)) == 1 + 2 + 4 + 8 + 16 + 32 + 18 * 60


def test_retry_after_wins_only_when_longer() -> None:
    policy = RetryPolicy()
    slow = ClassifiedError(ChatErrorKind.rate_limit, True, "m", retry_after=10)
    assert policy.wait_for(1, slow) == 10
    assert policy.wait_for(6, slow) == 32
    assert policy.wait_for(2, ClassifiedError(ChatErrorKind.rate_limit, True, "m")) == 2


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def err(retryable: bool, kind: ChatErrorKind = ChatErrorKind.overloaded) -> ProviderError:
    return ProviderError(ClassifiedError(kind, retryable, "msg", detail="raw"))


def _classify(exc: BaseException) -> ClassifiedError:
    if isinstance(exc, ProviderError):
        return exc.error
    return ClassifiedError(ChatErrorKind.generic, False, str(exc))


async def test_retries_until_success() -> None:
    sleeps: list[float] = []
    seen: list[tuple[int, ChatErrorKind, float]] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    call = Flaky([err(True), err(True, ChatErrorKind.timeout)])
    result = await retry(
        call,
        policy=RetryPolicy(),
        classify=_classify,
        on_retry=lambda n, e, d: seen.append((n, e.kind, d)),
        sleep=sleep,
    )
    assert result == "ok" and call.calls == 3
    assert seen == [(1, ChatErrorKind.overloaded, 1.0), (2, ChatErrorKind.timeout, 2.0)]
    assert sleeps == [1.0, 2.0]


async def test_non_retryable_is_raised_without_retry() -> None:
    call = Flaky([RuntimeError("boom")])
    with pytest.raises(ProviderError) as info:
        await retry(call, policy=RetryPolicy(), classify=_classify, on_retry=lambda *a: None)
    assert info.value.error.kind == ChatErrorKind.generic and call.calls == 1


async def test_exhaustion_after_max_attempts() -> None:
    call = Flaky([err(True) for _ in range(30)])
    attempts: list[int] = []

    async def sleep(s: float) -> None:
        return None

    with pytest.raises(ProviderError) as info:
        await retry(
            call,
            policy=RetryPolicy(),
            classify=_classify,
            on_retry=lambda n, e, d: attempts.append(n),
            sleep=sleep,
        )
    assert call.calls == 25 and attempts == list(range(1, 25))
    assert info.value.error.detail == "max retry attempts (25) exceeded: raw"
    assert info.value.error.kind == ChatErrorKind.overloaded


async def test_cancellation_during_the_wait_propagates() -> None:
    started = asyncio.Event()

    async def sleep(s: float) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        retry(
            Flaky([err(True)]),
            policy=RetryPolicy(),
            classify=_classify,
            on_retry=lambda *a: None,
            sleep=sleep,
        )
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
