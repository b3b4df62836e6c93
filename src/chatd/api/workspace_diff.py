"""The chat's workspace in ``GET /chats/{chat}/diff``: its main repository's branch, remote
origin and unified diff (tracked changes against HEAD plus untracked files), from the git
state this replica follows (:class:`~chatd.workspace.git_states.GitStates`).

What the stored diff status already says (a repository on the hosting provider, a pull
request and its own diff) wins; the workspace fills what is still missing.
"""

from __future__ import annotations

from chatd.sdk.chats import ChatDiffContents
from chatd.sdk.git import WorkspaceAgentRepoChanges


def with_workspace(
    contents: ChatDiffContents, repo: WorkspaceAgentRepoChanges | None
) -> ChatDiffContents:
    if repo is None:
        return contents
    if contents.remote_origin is None and repo.remote_origin:
        contents.remote_origin = repo.remote_origin
    if contents.branch is None and repo.branch:
        contents.branch = repo.branch
    if contents.diff is None:
        contents.diff = repo.unified_diff
    return contents
