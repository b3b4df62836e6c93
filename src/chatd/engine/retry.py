"""The retry policy around one model call (engine-behaviour §7).

Pure policy plus a small loop: delays double from ``initial_delay`` up to ``max_delay``; at
most ``max_attempts`` calls in total. The sleep is injected so tests never wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from chatd.llm.types import ClassifiedError, ProviderError
from chatd.settings import Settings

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
# (attempt (1-based), the failure, the delay in seconds before the next attempt)
OnRetry = Callable[[int, ClassifiedError, float], None]
Classify = Callable[[BaseException], ClassifiedError]
DETAIL_MAX = 500


@dataclass(frozen=True)
class RetryPolicy:
    initial_delay: float = 1.0
    max_delay: float = 60.0
    max_attempts: int = 25

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            initial_delay=settings.retry_initial_delay,
            max_delay=settings.retry_max_delay,
            max_attempts=settings.retry_max_attempts,
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): 1, 2, 4, ... capped."""
        return float(min(self.initial_delay * 2 ** (attempt - 1), self.max_delay))

    def wait_for(self, attempt: int, error: ClassifiedError) -> float:
        """The policy delay, or the provider's ``retry_after`` when that is longer."""
        return max(self.delay(attempt), error.retry_after or 0.0)


def exhausted(error: ClassifiedError, attempts: int) -> ClassifiedError:
    """The last failure, its detail saying the attempts ran out."""
    detail = f"max retry attempts ({attempts}) exceeded: {error.detail or error.message}"
    if len(detail) > DETAIL_MAX:
        detail = detail[: DETAIL_MAX - 1] + "…"
    return dataclasses.replace(error, detail=detail)


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    classify: Classify,
    on_retry: OnRetry,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``call`` until it succeeds; raise :class:`ProviderError` when it cannot.

    A non-retryable failure is raised at once; a retryable one is retried after
    ``on_retry`` until ``policy.max_attempts`` calls have failed. Cancellation propagates.
    """
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            error = classify(exc)
            if not error.retryable:
                raise ProviderError(error) from exc
            attempt += 1
            if attempt >= policy.max_attempts:
                raise ProviderError(exhausted(error, policy.max_attempts)) from exc
            delay = policy.wait_for(attempt, error)
            on_retry(attempt, error, delay)
            await sleep(delay)
