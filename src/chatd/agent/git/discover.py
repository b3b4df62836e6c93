"""Finding repositories and the directories worth watching.

A walk goes down from a directory, never into ``.git`` and never into a directory the
enclosing repository's git ignores (a first cut from ``git ls-files --others --ignored
--directory`` keeps the walk out of trees such as ``node_modules``; ``git check-ignore``
then settles every directory found). Every directory holding a ``.git`` (a directory, or a
file naming one elsewhere) is a repository; the ones nested in another count as well.

These functions block: callers run them in a worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from chatd.agent.git import command
from chatd.agent.git.command import GitError
from chatd.agent.git.repo import is_repo


@dataclass
class Found:
    """What a walk found: repositories, and the directories of their work trees (and of the
    directories around them) that are not ignored."""

    repos: set[Path] = field(default_factory=set)
    dirs: set[Path] = field(default_factory=set)

    def update(self, other: Found) -> None:
        self.repos |= other.repos
        self.dirs |= other.dirs


@dataclass(frozen=True)
class GitDirs:
    """Where a repository keeps its state: ``git_dir`` (``HEAD``, ``index``) and
    ``common_dir`` (``config``, ``refs``), the same directory unless it is a linked work tree
    or a submodule."""

    git_dir: Path
    common_dir: Path


def walk(start: Path, repo: Path | None, *, timeout: float = command.GIT_TIMEOUT) -> Found:
    """Repositories and directories from ``start`` down; ``repo`` is the repository
    ``start`` lies in (``None`` outside any), whose ignore rules apply until a nested one."""
    if is_repo(start):
        repo = start
    found = Found()
    if not start.is_dir() or start.is_symlink():
        return found
    if repo is not None and repo == start:
        found.repos.add(start)
    skipped = _ignored_candidates(repo, start, timeout) if repo is not None else set()
    if start in skipped:
        return found
    nested: list[Path] = []
    stack = [start]
    while stack:
        directory = stack.pop()
        found.dirs.add(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name == ".git" or not entry.is_dir(follow_symlinks=False):
                continue
            child = Path(entry.path)
            if child in skipped:
                continue
            if is_repo(child):
                nested.append(child)
            else:
                stack.append(child)
    if repo is not None:
        ignored = _ignored(repo, [*found.dirs, *nested], timeout)
        if ignored:
            found.dirs = {d for d in found.dirs if not _under_any(d, ignored)}
            nested = [n for n in nested if not _under_any(n, ignored)]
    for root in nested:
        found.update(walk(root, root, timeout=timeout))
    return found


def enclosing_repo(path: Path) -> Path | None:
    """The repository holding ``path``: the nearest directory, from ``path`` up, with a
    ``.git``."""
    for candidate in (path, *path.parents):
        if is_repo(candidate) and candidate.is_dir():
            return candidate
    return None


def owner(path: Path, repos: set[Path]) -> Path | None:
    """The deepest of ``repos`` holding ``path``."""
    for candidate in (path, *path.parents):
        if candidate in repos:
            return candidate
    return None


def git_dirs(root: Path, *, timeout: float = command.GIT_TIMEOUT) -> GitDirs | None:
    dot_git = root / ".git"
    if dot_git.is_dir() and not dot_git.is_symlink():
        return GitDirs(dot_git, dot_git)
    try:
        _, out = command.run(
            root,
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            timeout=timeout,
        )
    except GitError:
        return None
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) != 2:
        return None
    return GitDirs(Path(lines[0]), Path(lines[1]))


def _ignored_candidates(repo: Path, start: Path, timeout: float) -> set[Path]:
    """Directories under ``start`` that git collapses in its listing of ignored files:
    each is ignored, or holds nothing but ignored files (settled later)."""
    spec = os.fsdecode(start.relative_to(repo)) if start != repo else "."
    try:
        _, out = command.run(
            repo,
            "ls-files",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
            "-z",
            "--",
            spec,
            timeout=timeout,
        )
    except GitError:
        return set()
    base = os.fsencode(repo)
    candidates = {
        Path(os.fsdecode(os.path.join(base, name.rstrip(b"/"))))
        for name in out.split(b"\0")
        if name.endswith(b"/")
    }
    return _ignored(repo, list(candidates), timeout)


def _ignored(repo: Path, paths: list[Path], timeout: float) -> set[Path]:
    """Which of ``paths`` (in ``repo``) git ignores. A directory holding tracked files is
    not ignored, whatever the patterns say; asking git with its index is slow (a fifth of
    a second for a thousand directories), so the patterns alone pick the few to ask."""
    relative = [os.fsencode(p.relative_to(repo)) for p in paths if p != repo]
    matching = _check_ignore(repo, relative, ["--no-index"], timeout)
    if not matching:
        return set()
    base = os.fsencode(repo)
    ignored = _check_ignore(repo, sorted(matching), [], timeout)
    return {Path(os.fsdecode(os.path.join(base, name))) for name in ignored}


def _check_ignore(
    repo: Path, relative: list[bytes], options: list[str], timeout: float
) -> set[bytes]:
    if not relative:
        return set()
    try:
        _, out = command.run(
            repo,
            "check-ignore",
            *options,
            "-z",
            "--stdin",
            stdin=b"\0".join(relative) + b"\0",
            ok=(0, 1),
            timeout=timeout,
        )
    except GitError:
        return set()
    return {name for name in out.split(b"\0") if name}


def _under_any(path: Path, roots: set[Path]) -> bool:
    return any(candidate in roots for candidate in (path, *path.parents))
