"""When a diff status is refreshed again (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from chatd.gitsync.errors import RateLimited
from chatd.gitsync.pulls import OPEN
from chatd.settings import Settings

MINUTE = dt.timedelta(minutes=1)
# GitHub's limits reset within the hour: a reset announced further away is not believed.
MAX_RATE_LIMIT_WAIT = 3600.0


@dataclass(frozen=True)
class RefreshPolicy:
    open_pr: dt.timedelta = 2 * MINUTE
    closed_pr: dt.timedelta = 30 * MINUTE  # merged or closed: they rarely change again
    no_pr: dt.timedelta = 5 * MINUTE
    backoff_min: dt.timedelta = MINUTE
    backoff_max: dt.timedelta = 30 * MINUTE

    @classmethod
    def from_settings(cls, settings: Settings) -> RefreshPolicy:
        def seconds(value: float) -> dt.timedelta:
            return dt.timedelta(seconds=value)

        return cls(
            open_pr=seconds(settings.github_open_pr_interval),
            closed_pr=seconds(settings.github_closed_pr_interval),
            no_pr=seconds(settings.github_no_pr_interval),
            backoff_min=seconds(settings.github_backoff_min),
            backoff_max=seconds(settings.github_backoff_max),
        )

    def after_success(self, state: str | None) -> dt.timedelta:
        """Until the next refresh of a status whose pull request is in ``state`` (None: the
        branch has none)."""
        if state is None:
            return self.no_pr
        return self.open_pr if state == OPEN else self.closed_pr

    def after_failure(self, failures: int) -> dt.timedelta:
        """Until the next try after ``failures`` failures in a row (1 or more)."""
        delay: dt.timedelta = self.backoff_min * (2 ** min(max(failures - 1, 0), 20))
        return min(delay, self.backoff_max)

    def after_rate_limit(self, now: dt.datetime, error: RateLimited, failures: int) -> dt.datetime:
        """When GitHub said the limit resets (a second to an hour away); without a word from
        it, the backoff for ``failures``."""
        wait: float | None = error.retry_after
        if wait is None and error.reset_at is not None:
            wait = error.reset_at - now.timestamp()
        if wait is None:
            return now + self.after_failure(failures)
        return now + dt.timedelta(seconds=min(max(wait, 1.0), MAX_RATE_LIMIT_WAIT))
