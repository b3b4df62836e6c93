"""Workspace git state wire types (the ``/stream/git`` WebSocket).

Beyond the reference, each repository carries its change counts (tracked changes against
HEAD plus untracked files, exact even when the diff text was cut) and whether its diff text
was cut (``truncated``; the message's ``message`` then says what was cut and why).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from chatd.sdk.base import WireModel


class WorkspaceAgentRepoChanges(WireModel):
    repo_root: str
    branch: str
    remote_origin: str
    unified_diff: str
    removed: bool = False
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    truncated: bool = False


class WorkspaceAgentGitServerMessageType(StrEnum):
    changes = "changes"
    error = "error"


class WorkspaceAgentGitServerMessage(WireModel):
    type: str
    message: str | None = None
    scanned_at: dt.datetime | None = None
    repositories: list[WorkspaceAgentRepoChanges] | None = None


class WorkspaceAgentGitClientMessageType(StrEnum):
    refresh = "refresh"


class WorkspaceAgentGitClientMessage(WireModel):
    type: WorkspaceAgentGitClientMessageType
