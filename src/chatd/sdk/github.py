"""A user's GitHub token (chatd's own routes; the token itself is never sent back)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from chatd.sdk.base import RequestModel, WireModel


class SetGitHubTokenRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"token"})

    token: str = ""


class GitHubTokenStatus(WireModel):
    configured: bool
    updated_at: dt.datetime | None = None
