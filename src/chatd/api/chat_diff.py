"""``GET /chats/{chat}/diff`` from the cached diff status (api-behaviour §6.9), pure.

The only git provider chatd knows is GitHub (github.com or the configured Enterprise server),
so a remote origin or pull-request URL there yields the repository reference; anything else
yields only the stored URL. Fetching the diff itself is :mod:`chatd.gitsync.diff`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from chatd.github_site import GITHUB_COM, GitHubSite
from chatd.sdk.chats import ChatDiffContents

GITHUB = "github"


def normalized_github_origin(origin: str, github: GitHubSite = GITHUB_COM) -> str | None:
    """``<github>/OWNER/REPO`` for any remote form on ``github``, else None."""
    repo = github.repo(origin)
    return github.repo_url(repo) if repo else None


def diff_contents(
    chat_id: uuid.UUID, row: Mapping[Any, Any] | None, github: GitHubSite = GITHUB_COM
) -> ChatDiffContents:
    """What the stored row says about the chat's repository, branch and pull request."""
    out = ChatDiffContents(chat_id=chat_id)
    if row is None:
        return out
    pull_request_url = (row["url"] or "").strip()
    origin, branch = row["git_remote_origin"].strip(), row["git_branch"].strip()
    normalized = normalized_github_origin(origin, github) if origin and branch else None
    if normalized is not None:
        out.provider, out.remote_origin, out.branch = GITHUB, normalized, branch
    elif github.pull(pull_request_url):
        out.provider = GITHUB
    out.pull_request_url = pull_request_url or None
    return out
