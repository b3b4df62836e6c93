"""The GitHub REST calls chatd makes, each authenticated with the chat owner's token.

One :class:`GitHubClient` per process (its connection pool is shared); every call takes the
token to send. Failures raise the classes of :mod:`chatd.gitsync.errors`; a body that is not
what GitHub documents raises :class:`~chatd.gitsync.errors.GitHubError`.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx2

from chatd.github_site import Repo
from chatd.gitsync.errors import (
    GitHubError,
    GitHubUnavailable,
    NotFound,
    RateLimited,
    Unauthorized,
)

API_VERSION = "2022-11-28"
JSON_MEDIA_TYPE = "application/vnd.github+json"
DIFF_MEDIA_TYPE = "application/vnd.github.diff"
# Pull requests of one branch looked at (newest first), and reviews of one pull request read.
PULLS_PER_BRANCH = 30
REVIEWS_PER_PAGE = 100
# A pull request's diff larger than this is not fetched in full (:class:`DiffTooLarge`).
MAX_DIFF_BYTES = 8 * 1024 * 1024


class DiffTooLarge(GitHubError):
    """The diff is larger than the client reads."""


class GitHubClient:
    def __init__(
        self,
        api_url: str,
        *,
        timeout: float,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx2.AsyncClient(
            base_url=self.api_url,
            timeout=timeout,
            transport=transport,
            # A renamed repository answers 301; httpx2 drops the token on a cross-origin hop.
            follow_redirects=True,
            headers={"X-GitHub-Api-Version": API_VERSION, "User-Agent": "chatd"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def branch_pulls(
        self, token: str, repo: Repo, branch: str, *, state: str = "all"
    ) -> list[dict[str, Any]]:
        """The pull requests from ``branch`` of ``repo`` itself, newest first."""
        params = {
            "head": f"{repo.owner}:{branch}",
            "state": state,
            "sort": "created",
            "direction": "desc",
            "per_page": str(PULLS_PER_BRANCH),
        }
        body = await self._json(token, f"{_repo_path(repo)}/pulls", params)
        if not isinstance(body, list) or not all(isinstance(p, dict) for p in body):
            raise GitHubError("the list of pull requests is not a JSON array of objects")
        return body

    async def pull(self, token: str, repo: Repo, number: int) -> dict[str, Any]:
        body = await self._json(token, f"{_repo_path(repo)}/pulls/{number}")
        if not isinstance(body, dict):
            raise GitHubError("the pull request is not a JSON object")
        return body

    async def reviews(self, token: str, repo: Repo, number: int) -> list[dict[str, Any]]:
        """The first page of the pull request's reviews, oldest first."""
        path = f"{_repo_path(repo)}/pulls/{number}/reviews"
        body = await self._json(token, path, {"per_page": str(REVIEWS_PER_PAGE)})
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise GitHubError("the list of reviews is not a JSON array of objects")
        return body

    async def pull_diff(
        self, token: str, repo: Repo, number: int, *, max_bytes: int = MAX_DIFF_BYTES
    ) -> str:
        """The pull request's unified diff."""
        path = f"{_repo_path(repo)}/pulls/{number}"
        try:
            async with self._http.stream(
                "GET", path, headers=_headers(token, DIFF_MEDIA_TYPE)
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_status(response)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise DiffTooLarge(f"the diff is larger than {max_bytes} bytes")
                    chunks.append(chunk)
        except httpx2.TransportError as exc:
            raise GitHubUnavailable(f"GitHub could not be reached: {exc!r}") from None
        return b"".join(chunks).decode("utf-8", errors="replace")

    async def _json(self, token: str, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            response = await self._http.get(
                path, params=params, headers=_headers(token, JSON_MEDIA_TYPE)
            )
        except httpx2.TransportError as exc:
            raise GitHubUnavailable(f"GitHub could not be reached: {exc!r}") from None
        raise_for_status(response)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GitHubError(f"GET {path}: the answer is not JSON") from None


def _headers(token: str, accept: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": accept}


def _repo_path(repo: Repo) -> str:
    return f"/repos/{quote(repo.owner, safe='')}/{quote(repo.name, safe='')}"


def raise_for_status(response: httpx2.Response) -> None:
    """Raise the error class a non-2xx answer belongs to."""
    status = response.status_code
    if 200 <= status < 300:
        return
    what = f"{response.request.method} {response.request.url.path}: {status} {_message(response)}"
    headers = response.headers
    retry_after, retry_at = _retry_after(headers.get("retry-after"))
    limited = headers.get("x-ratelimit-remaining") == "0" or retry_after is not None
    limited = limited or retry_at is not None
    if status == 429 or (status == 403 and limited):
        reset_at = retry_at if retry_at is not None else _number(headers.get("x-ratelimit-reset"))
        raise RateLimited(what, retry_after=retry_after, reset_at=reset_at)
    if status in (401, 403):
        raise Unauthorized(what)
    if status == 404:
        raise NotFound(what)
    if status >= 500:
        raise GitHubUnavailable(what)
    raise GitHubError(what)


def _message(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.reason_phrase


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> tuple[float | None, float | None]:
    """``Retry-After`` as (seconds to wait, None) or, when it is an HTTP date, (None, its
    Unix time)."""
    if value is None:
        return None, None
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds), None
    try:
        return None, email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None, None
