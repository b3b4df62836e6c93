"""How a GitHub call fails::

GitHubError            anything unexpected (an odd status, a body that is not the shape)
├── RateLimited        403/429 with x-ratelimit-remaining 0, or a Retry-After
├── GitHubUnavailable  5xx, a connection that fails, a timeout
├── Unauthorized       401 (a bad or expired token), or 403 (one lacking permission)
└── NotFound           404 (no such repository or pull request, or not visible)
"""

from __future__ import annotations


class GitHubError(Exception):
    """Base of the GitHub client's errors."""


class RateLimited(GitHubError):
    """The token's rate limit is spent. ``retry_after`` (seconds from now) or ``reset_at``
    (Unix time) says when to come back, when GitHub said."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, reset_at: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reset_at = reset_at


class GitHubUnavailable(GitHubError):
    """GitHub could not be reached, or answered with a server error."""


class Unauthorized(GitHubError):
    """The token was refused."""


class NotFound(GitHubError):
    """The repository or pull request does not exist, or the token cannot see it."""
