"""The repositories being watched, their inotify watches, and what a batch of events means.

Each repository gets one watch per directory of its work tree (ignored ones left out), one
on its git directory (``HEAD``, ``index``, ``config``, ``packed-refs``: commits, branch
switches, ``git add``, origin changes), one on the common directory when that is elsewhere
(linked work trees, submodules), and one on every directory under ``refs/heads``; never on
``objects`` or ``logs``. The directories around the repositories under the watched
directory are watched too, so that a ``git init`` or ``git clone`` there is seen.

A :class:`WatchTable` without inotify only keeps the set of repositories (polling).
Every method blocks on the disk and git: one worker thread at a time calls them.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chatd.agent.git import discover, inotify
from chatd.agent.git.discover import Found
from chatd.agent.git.inotify import Event, Inotify
from chatd.agent.git.repo import is_repo

# One mask for every watch: a directory can be met both as part of a work tree and as a
# git directory (``--separate-git-dir``), and a second watch on it replaces the first's mask.
_MASK = (
    inotify.CREATE
    | inotify.DELETE
    | inotify.MODIFY
    | inotify.CLOSE_WRITE
    | inotify.ATTRIB
    | inotify.MOVED_FROM
    | inotify.MOVED_TO
    | inotify.DELETE_SELF
    | inotify.MOVE_SELF
    | inotify.ONLYDIR
    | inotify.DONT_FOLLOW
    | inotify.EXCL_UNLINK
)
_APPEARS = inotify.CREATE | inotify.MOVED_TO
_LEAVES = inotify.DELETE | inotify.MOVED_FROM


class Kind(enum.Enum):
    TREE = "tree"  # a directory of a work tree, or around the repositories
    GIT = "git"  # a repository's git directory (or its common directory)
    REFS = "refs"  # a directory under refs/heads


@dataclass
class _Watch:
    path: Path
    kind: Kind
    # The repositories a GIT or REFS watch serves: several when linked work trees share
    # their common directory.
    repos: set[Path] = field(default_factory=set)


@dataclass
class _Plan:
    full: bool = False
    dirty: set[Path] = field(default_factory=set)
    appeared: set[Path] = field(default_factory=set)
    left: set[Path] = field(default_factory=set)
    refs: set[tuple[Path, Path]] = field(default_factory=set)


class WatchTable:
    """Repositories found from ``directory`` and from ``touched`` roots, with their watches.
    Raises :class:`inotify.Unavailable` when the watch limit is reached."""

    def __init__(
        self,
        directory: Path,
        inotify_: Inotify | None,
        *,
        touched: set[Path],
        timeout: float,
    ) -> None:
        self.directory = directory
        self.repos: set[Path] = set()
        # Roots added by touch: shared with the watcher, so they outlive this table.
        self.touched = touched
        self._inotify = inotify_
        self._timeout = timeout
        self._watches: dict[int, _Watch] = {}
        self._by_path: dict[tuple[Path, Kind], int] = {}

    @property
    def watch_count(self) -> int:
        return len(self._watches)

    def rediscover(self) -> set[Path]:
        """Walk everything again; the repositories to scan (every one found)."""
        found = discover.walk(self.directory, None, timeout=self._timeout)
        for root in self.touched:
            if root not in found.repos and is_repo(root):
                found.update(discover.walk(root, root, timeout=self._timeout))
        for root in self.repos - found.repos:
            self.forget(root)
        stale = [
            (path, kind)
            for (path, kind) in self._by_path
            if kind is Kind.TREE and path not in found.dirs
        ]
        for key in stale:
            self._unwatch(self._by_path[key])
        self._take(found)
        self.repos = found.repos
        return set(found.repos)

    def touch(self, path: Path) -> Path | None:
        """Add the repository holding ``path``; its root, when there is one."""
        existing = Path(os.path.realpath(path))
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        root = discover.enclosing_repo(existing)
        if root is None:
            return None
        self.touched.add(root)
        if root not in self.repos:
            self._take(discover.walk(root, root, timeout=self._timeout))
        return root

    def update(self, events: Iterable[Event]) -> set[Path]:
        """Follow ``events``: new directories get watches, new repositories are found;
        the repositories to scan again (a full walk's after an overflow)."""
        plan = self._plan(events)
        if plan.full:
            return self.rediscover() | (plan.dirty & self.repos)
        for gone in plan.left:
            plan.dirty |= {repo for repo in self.repos if repo.is_relative_to(gone)}
            self._drop_under(gone)
        for path in sorted(plan.appeared):
            if any(parent in plan.appeared for parent in path.parents):
                continue
            context = discover.owner(path.parent, self.repos)
            found = discover.walk(path, context, timeout=self._timeout)
            plan.dirty |= found.repos
            self._take(found)
        for directory, repo in plan.refs:
            self._watch_refs(directory, repo)
        return plan.dirty & self.repos

    def forget(self, repo: Path) -> None:
        """Drop a repository that is gone, and its git directory watches."""
        self.repos.discard(repo)
        for wd, watch in list(self._watches.items()):
            if repo in watch.repos:
                watch.repos.discard(repo)
                if not watch.repos:
                    self._unwatch(wd)

    def _plan(self, events: Iterable[Event]) -> _Plan:
        plan = _Plan()
        for event in events:
            if event.mask & inotify.Q_OVERFLOW:
                plan.full = True
                continue
            watch = self._watches.get(event.wd)
            if watch is None:
                continue
            if event.mask & inotify.IGNORED:
                self._forget_wd(event.wd)
            if watch.kind is not Kind.TREE:
                plan.dirty |= watch.repos
                if watch.kind is Kind.REFS and event.mask & inotify.ISDIR:
                    if event.mask & _APPEARS:
                        for repo in watch.repos:
                            plan.refs.add((watch.path / os.fsdecode(event.name), repo))
                continue
            self._plan_tree(plan, watch.path, event)
        return plan

    def _plan_tree(self, plan: _Plan, directory: Path, event: Event) -> None:
        owner = discover.owner(directory, self.repos)
        if owner is not None:
            plan.dirty.add(owner)
        if event.mask & (inotify.DELETE_SELF | inotify.MOVE_SELF):
            plan.left.add(directory)
            return
        if not event.name:
            return
        child = directory / os.fsdecode(event.name)
        if event.name == b".git" and event.mask & (_APPEARS | _LEAVES):
            # A repository begins or ends here.
            plan.appeared.add(directory)
            if directory in self.repos:
                plan.dirty.add(directory)
        elif event.mask & inotify.ISDIR:
            if event.mask & _LEAVES:
                plan.left.add(child)
            if event.mask & _APPEARS:
                plan.appeared.add(child)
        elif event.name == b".gitignore" and owner is not None:
            plan.appeared.add(directory)  # what is ignored below it may have changed

    def _take(self, found: Found) -> None:
        """Watch what a walk found, and what appeared in those directories between the
        walk's listing and their watches (no event tells of it)."""
        while found.dirs or found.repos:
            for directory in sorted(found.dirs):
                self._watch(directory, Kind.TREE, None)
            for repo in sorted(found.repos):
                self.repos.add(repo)
                self._watch_git(repo)
            found = self._missed(found.dirs)

    def _missed(self, directories: Iterable[Path]) -> Found:
        """Subdirectories of ``directories`` that are not watched yet, walked."""
        missed = Found()
        if self._inotify is None:
            return missed
        for directory in sorted(directories):
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                child = Path(entry.path)
                if (
                    entry.name == ".git"
                    or not entry.is_dir(follow_symlinks=False)
                    or (child, Kind.TREE) in self._by_path
                ):
                    continue
                context = discover.owner(directory, self.repos)
                missed.update(discover.walk(child, context, timeout=self._timeout))
        return missed

    def _watch_git(self, repo: Path) -> None:
        if self._inotify is None:
            return
        dirs = discover.git_dirs(repo, timeout=self._timeout)
        if dirs is None:
            return
        self._watch(dirs.git_dir, Kind.GIT, repo)
        if dirs.common_dir != dirs.git_dir:
            self._watch(dirs.common_dir, Kind.GIT, repo)
        self._watch_refs(dirs.common_dir / "refs" / "heads", repo)

    def _watch_refs(self, top: Path, repo: Path) -> None:
        for directory, subdirs, _ in os.walk(top):
            subdirs.sort()
            self._watch(Path(directory), Kind.REFS, repo)

    def _watch(self, path: Path, kind: Kind, repo: Path | None) -> None:
        if self._inotify is None:
            return
        wd = self._by_path.get((path, kind))
        if wd is None:
            try:
                wd = self._inotify.add(path, _MASK)
            except inotify.Unavailable:
                raise
            except OSError:  # gone already, or not readable: nothing to watch
                return
        watch = self._watches.get(wd)
        if watch is None or (watch.kind is Kind.TREE and kind is not Kind.TREE):
            # A directory met twice shares its descriptor: the git role wins, since every
            # event there concerns its repositories.
            if watch is not None:
                self._by_path.pop((watch.path, watch.kind), None)
            watch = self._watches[wd] = _Watch(path, kind)
            self._by_path[(path, kind)] = wd
        if repo is not None and watch.kind is not Kind.TREE:
            watch.repos.add(repo)

    def _unwatch(self, wd: int) -> None:
        if self._inotify is not None:
            self._inotify.remove(wd)
        self._forget_wd(wd)

    def _forget_wd(self, wd: int) -> None:
        watch = self._watches.pop(wd, None)
        if watch is not None:
            self._by_path.pop((watch.path, watch.kind), None)

    def _drop_under(self, top: Path) -> None:
        for wd, watch in list(self._watches.items()):
            if watch.kind is Kind.TREE and watch.path.is_relative_to(top):
                with contextlib.suppress(OSError):
                    self._unwatch(wd)
