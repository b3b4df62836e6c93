"""Workspace git state wire types (the ``/stream/git`` WebSocket)."""

from __future__ import annotations

import datetime as dt

from chatd.sdk.base import WireModel


class WorkspaceAgentRepoChanges(WireModel):
    repo_root: str
    branch: str
    remote_origin: str
    unified_diff: str
    removed: bool = False


class WorkspaceAgentGitServerMessage(WireModel):
    type: str
    message: str | None = None
    scanned_at: dt.datetime | None = None
    repositories: list[WorkspaceAgentRepoChanges] | None = None
