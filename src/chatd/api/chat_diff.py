"""``GET /chats/{chat}/diff`` from the cached diff status alone (no git provider calls yet).

The only git provider chatd knows is GitHub, so a remote origin or pull-request URL on
github.com yields the repository reference; anything else yields only the stored URL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from chatd.sdk.chats import ChatDiffContents

GITHUB = "github"
_GITHUB_REMOTE = re.compile(
    r"^(?:https?://(?:[^@/]+@)?github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$",
    re.IGNORECASE,
)
_GITHUB_PULL = re.compile(
    r"^https?://github\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pull/\d+/?$", re.IGNORECASE
)


def normalized_github_origin(origin: str) -> str | None:
    """``https://github.com/OWNER/REPO`` for any GitHub remote form, else None."""
    match = _GITHUB_REMOTE.match(origin.strip())
    if match is None:
        return None
    return f"https://github.com/{match['owner']}/{match['repo']}"


def diff_contents(chat_id: uuid.UUID, row: Mapping[Any, Any] | None) -> ChatDiffContents:
    """What the stored row says about the chat's repository, branch and pull request."""
    out = ChatDiffContents(chat_id=chat_id)
    if row is None:
        return out
    pull_request_url = (row["url"] or "").strip()
    origin, branch = row["git_remote_origin"].strip(), row["git_branch"].strip()
    normalized = normalized_github_origin(origin) if origin and branch else None
    if normalized is not None:
        out.provider, out.remote_origin, out.branch = GITHUB, normalized, branch
    elif _GITHUB_PULL.match(pull_request_url):
        out.provider = GITHUB
    out.pull_request_url = pull_request_url or None
    return out
