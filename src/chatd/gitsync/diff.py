"""A chat's pull request and its diff, for ``GET /chats/{chat}/diff`` (api-behaviour §6.9).

Best effort by design: without an owner token, with GitHub unreachable or refusing, the answer
simply has no diff (the endpoint never fails because of GitHub).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from chatd.github_site import GitHubSite, PullRef
from chatd.gitsync.client import GitHubClient
from chatd.gitsync.errors import GitHubError
from chatd.gitsync.pulls import choose_pull
from chatd.secretbox import SecretError
from chatd.store import git_tokens
from chatd.store.chat_diff import set_pull_request_url
from chatd.store.db import Database

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PullRequestDiff:
    url: str
    diff: str | None  # None: the pull request is known, its diff could not be read


async def pull_request_diff(
    db: Database,
    client: GitHubClient,
    site: GitHubSite,
    *,
    owner_id: uuid.UUID,
    row: Mapping[str, Any] | None,
) -> PullRequestDiff | None:
    """The pull request of a chat's diff-status ``row`` and its unified diff.

    A row without a pull-request URL, but with a branch of a repository on ``site``, has the
    branch's open pull request looked up; one found is recorded on the row (and so refreshed
    soon). None when there is no pull request to show, or no token of ``owner_id`` to ask
    GitHub with.
    """
    if row is None:
        return None
    url = (row["url"] or "").strip()
    pull = site.pull(url) if url else None
    branch = row["git_branch"].strip()
    repo = site.repo(row["git_remote_origin"]) if branch and not url else None
    if pull is None and repo is None:
        return None
    token = await _token(db, owner_id)
    if token is None:
        return None
    try:
        if pull is None:
            assert repo is not None
            found = choose_pull(await client.branch_pulls(token, repo, branch, state="open"))
            if found is None:
                return None
            url, pull = found.html_url, PullRef(repo, found.number)
            async with db.write() as conn:
                await set_pull_request_url(conn, db.now(), row["chat_id"], url)
    except GitHubError as exc:
        log.info("github pull request lookup failed", error=str(exc), chat_id=str(row["chat_id"]))
        return None
    try:
        diff: str | None = await client.pull_diff(token, pull.repo, pull.number)
    except GitHubError as exc:
        log.info("github diff unavailable", error=str(exc), url=url)
        diff = None
    return PullRequestDiff(url=url, diff=diff)


async def _token(db: Database, owner_id: uuid.UUID) -> str | None:
    try:
        async with db.read() as conn:
            return await git_tokens.get_token(conn, db.secrets, owner_id)
    except SecretError as exc:
        log.warning("github token unreadable", user_id=str(owner_id), error=str(exc))
        return None
