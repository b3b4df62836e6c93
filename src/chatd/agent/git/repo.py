"""One repository's state: its branch, its origin, and its diff against HEAD (tracked
changes as ``git diff HEAD`` shows them, untracked files as new files), read without
writing to it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatd.agent.git import command, untracked
from chatd.agent.git.command import GitError
from chatd.agent.git.diff import Assembled, DiffLimits, FileDiff, TrackedDiffs, assemble
from chatd.agent.git.origin import public_origin
from chatd.agent.paths import text

# ``git diff`` itself rewrites the index after comparing (whatever the optional-locks
# setting says); the plumbing ``git diff-index`` gives the same patch and never writes.
_DIFF_OPTIONS = (
    "-p",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--no-relative",
    "--ignore-submodules=dirty",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


@dataclass(frozen=True)
class RepoState:
    """What a subscriber is told about one repository; ``note`` goes to the message."""

    repo_root: str
    branch: str = ""
    remote_origin: str = ""
    unified_diff: str = ""
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    truncated: bool = False
    removed: bool = False
    note: str = ""

    def entry(self) -> dict[str, Any]:
        return {
            "repo_root": self.repo_root,
            "branch": self.branch,
            "remote_origin": self.remote_origin,
            "unified_diff": self.unified_diff,
            "removed": self.removed,
            "additions": self.additions,
            "deletions": self.deletions,
            "changed_files": self.changed_files,
            "truncated": self.truncated,
        }


def is_repo(root: Path) -> bool:
    """Whether ``root`` holds a ``.git`` (a directory, or a file naming one elsewhere)."""
    return os.path.lexists(root / ".git")


def scan(root: Path, limits: DiffLimits, *, timeout: float = command.GIT_TIMEOUT) -> RepoState:
    """The state of the repository at ``root`` now; ``removed`` when it is no longer one.
    Blocks (git runs in subprocesses): call it from a worker thread."""
    name = text(root)
    if not is_repo(root):
        return RepoState(name, removed=True)
    try:
        return _scan(root, name, limits, timeout)
    except GitError as exc:
        if not is_repo(root):
            return RepoState(name, removed=True)
        return RepoState(name, note=str(exc))


def _scan(root: Path, name: str, limits: DiffLimits, timeout: float) -> RepoState:
    _, status = command.run(
        root,
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--untracked-files=all",
        "--no-renames",
        "--ignore-submodules=dirty",
        timeout=timeout,
    )
    head, oid, new_files = _parse_status(status)
    if head == "(detached)":
        _, short = command.run(root, "rev-parse", "--short", "HEAD", timeout=timeout)
        branch = short.decode("utf-8", "replace").strip()
    else:
        branch = head
    _, origin = command.run(
        root, "config", "--get", "remote.origin.url", ok=(0, 1), timeout=timeout
    )
    base = "HEAD"
    if oid == "(initial)":
        _, empty = command.run(root, "hash-object", "-t", "tree", "/dev/null", timeout=timeout)
        base = empty.decode().strip()
    tracked = TrackedDiffs(limits)
    for piece in command.pieces(root, "diff-index", *_DIFF_OPTIONS, base, "--", timeout=timeout):
        tracked.feed(piece)
    files: list[FileDiff] = list(tracked.files)
    for path in new_files:
        rendered = untracked.render(root, path, limits)
        if rendered is not None:
            files.append(rendered)
    diff: Assembled = assemble(files, limits)
    return RepoState(
        name,
        branch=branch,
        remote_origin=public_origin(origin.decode("utf-8", "replace").strip()),
        unified_diff=diff.text,
        additions=diff.additions,
        deletions=diff.deletions,
        changed_files=diff.changed_files,
        truncated=diff.truncated,
        note=diff.note,
    )


def _parse_status(output: bytes) -> tuple[str, str, list[bytes]]:
    """The branch head, the HEAD commit (``(initial)`` when there is none) and the
    untracked files from ``git status --porcelain=v2 -z --branch``. A nested repository is
    listed as a directory (``sub/``): it is reported on its own, so it is skipped here."""
    head = oid = ""
    new_files: list[bytes] = []
    records = iter(output.split(b"\0"))
    for record in records:
        if record.startswith(b"# branch.head "):
            head = record[len(b"# branch.head ") :].decode("utf-8", "replace")
        elif record.startswith(b"# branch.oid "):
            oid = record[len(b"# branch.oid ") :].decode("utf-8", "replace")
        elif record.startswith(b"? "):
            if not record.endswith(b"/"):
                new_files.append(record[2:])
        elif record.startswith(b"2 "):
            next(records, None)  # a rename carries its old path as the next record
    return head, oid, new_files
