"""The git watcher: the state of the repositories in a workspace, pushed when it changes.

While at least one subscriber listens, the repositories are watched (inotify, or polling
where inotify cannot be used); each subscriber first gets every repository, then, after
each burst of changes has settled, the repositories whose state changed since it was last
sent (a repository that went away once, with ``removed``). With no subscriber nothing is
watched and no thread runs. The messages are described in :mod:`chatd.agent.git.messages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from chatd.agent.git import repo
from chatd.agent.git.command import GIT_TIMEOUT
from chatd.agent.git.diff import DiffLimits
from chatd.agent.git.inotify import Event, Inotify, Unavailable
from chatd.agent.git.messages import Subscriber, message, now
from chatd.agent.git.repo import RepoState
from chatd.agent.git.watches import WatchTable
from chatd.agent.paths import text

log = logging.getLogger("chatd.agent")

POLL_INTERVAL = 2.0
# Repositories scanned at once.
SCAN_THREADS = 4

_T = TypeVar("_T")


class GitWatcher:
    """Watches the git repositories under ``directory`` and those :meth:`touch` adds."""

    def __init__(
        self,
        directory: Path,
        *,
        debounce: float = 0.25,
        limits: DiffLimits = DiffLimits(),
        poll_interval: float = POLL_INTERVAL,
        git_timeout: float = GIT_TIMEOUT,
        use_inotify: bool = True,
    ) -> None:
        self.directory = Path(os.path.realpath(directory))
        self._debounce = debounce
        self._limits = limits
        self._poll_interval = poll_interval
        self._git_timeout = git_timeout
        self._use_inotify = use_inotify
        self._touched: set[Path] = set()
        self._table = self._new_table(None)
        self._lock = asyncio.Lock()
        self._subscribers: list[Subscriber] = []
        self._sent: dict[Path, RepoState] = {}
        self._inotify: Inotify | None = None
        self._polling = False
        self._said_polling = False
        self._events: list[Event] = []
        self._touches: set[Path] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._users = 0
        self._closed = False

    @property
    def watching(self) -> bool:
        """Whether an inotify descriptor is open (only while someone subscribes)."""
        return self._inotify is not None

    @property
    def polling(self) -> bool:
        """Whether changes are polled for (inotify could not be used)."""
        return self._polling

    @property
    def watch_count(self) -> int:
        return self._table.watch_count

    async def scan(self) -> dict[str, Any]:
        """Every repository's state now (a full message); changes nothing that is sent."""
        async with self._lock, self._threads():
            table = self._new_table(None)
            touches = set(self._touches)
            if not self._subscribers:
                self._touches.clear()
            roots = await self._blocking(functools.partial(_discover, table, touches))
            states = await self._scan(roots)
        return message((state for state in states.values() if not state.removed), now())

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Messages while the context is open: every repository first, then changes."""
        return self._subscription()

    def touch(self, path: Path) -> None:
        """A tool touched ``path``: watch the repository holding it (found by walking up to
        a ``.git``), even outside the watched directory."""
        self._touches.add(self.directory / path)
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()
        async with self._lock:
            await self._stop()

    @contextlib.asynccontextmanager
    async def _subscription(self) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        if self._closed:
            raise RuntimeError("the git watcher is closed")
        subscriber = Subscriber()
        async with self._lock:
            if not self._subscribers:
                self._start()
            self._subscribers.append(subscriber)
            try:
                await self._refresh(full=True, fresh=subscriber)
            except BaseException:
                await self._leave(subscriber)
                raise
        try:
            yield subscriber.messages()
        finally:
            subscriber.close()
            async with self._lock:
                await self._leave(subscriber)

    async def _leave(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)
            if not self._subscribers:
                await self._stop()

    def _new_table(self, inotify: Inotify | None) -> WatchTable:
        return WatchTable(self.directory, inotify, touched=self._touched, timeout=self._git_timeout)

    def _start(self) -> None:
        self._take_threads()
        self._wake.clear()
        self._polling = not self._use_inotify
        if self._use_inotify:
            try:
                self._inotify = Inotify()
            except Unavailable as exc:
                self._fall_back(exc)
        self._table = self._new_table(self._inotify)
        loop = asyncio.get_running_loop()
        if self._inotify is not None:
            loop.add_reader(self._inotify.fd, self._on_events)
        self._task = loop.create_task(self._run())

    async def _stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self._close_inotify()
        self._sent.clear()
        self._events.clear()
        self._table = self._new_table(None)
        self._release_threads()

    def _close_inotify(self) -> None:
        if self._inotify is not None:
            asyncio.get_running_loop().remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None

    def _fall_back(self, reason: OSError) -> None:
        self._close_inotify()
        self._polling = True
        self._wake.set()  # the loop may be waiting for events that will never come
        if not self._said_polling:
            self._said_polling = True
            log.warning(
                "git watch: inotify cannot be used (%s); polling every %g s instead",
                reason.strerror or reason,
                self._poll_interval,
            )

    def _on_events(self) -> None:
        assert self._inotify is not None
        events = self._inotify.read()
        if events:
            self._events.extend(events)
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            polled = False
            if self._polling:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                except TimeoutError:
                    polled = True
            else:
                await self._wake.wait()
            # Let a burst settle: ``debounce`` of quiet, at most four times that in all.
            deadline = loop.time() + 4 * self._debounce
            while not polled:
                self._wake.clear()
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), min(self._debounce, left))
                except TimeoutError:
                    break
            self._wake.clear()
            async with self._lock:
                try:
                    await self._refresh(full=self._polling)
                except Exception:
                    log.exception("git watch: cannot scan the repositories")

    async def _refresh(self, *, full: bool, fresh: Subscriber | None = None) -> None:
        """Follow what happened, scan what it touched, and tell the subscribers what changed
        (and ``fresh``, a new subscriber, everything)."""
        events, self._events = self._events, []
        touches, self._touches = self._touches, set()
        table = self._table
        try:
            roots = await self._blocking(functools.partial(_follow, table, events, touches, full))
        except Unavailable as exc:
            self._fall_back(exc)
            table = self._table = self._new_table(None)
            roots = await self._blocking(functools.partial(_discover, table, touches))
        states = await self._scan(roots)
        changed: dict[Path, RepoState] = {}
        for root, state in states.items():
            if state.removed:
                table.forget(root)
                if self._sent.pop(root, None) is not None:
                    changed[root] = state
            elif self._sent.get(root) != state:
                changed[root] = self._sent[root] = state
        for root in [root for root in self._sent if root not in table.repos]:
            del self._sent[root]
            changed[root] = RepoState(text(root), removed=True)
        scanned_at = now()
        for subscriber in self._subscribers:
            if subscriber is fresh:
                subscriber.offer(dict(self._sent), scanned_at, full=True)
            elif changed:
                subscriber.offer(changed, scanned_at, full=False)

    async def _scan(self, roots: Iterable[Path]) -> dict[Path, RepoState]:
        ordered = sorted(roots)
        scans = (
            self._blocking(
                functools.partial(repo.scan, root, self._limits, timeout=self._git_timeout)
            )
            for root in ordered
        )
        return dict(zip(ordered, await asyncio.gather(*scans), strict=True))

    async def _blocking(self, work: Callable[[], _T]) -> _T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    @contextlib.asynccontextmanager
    async def _threads(self) -> AsyncIterator[None]:
        self._take_threads()
        try:
            yield
        finally:
            self._release_threads()

    def _take_threads(self) -> None:
        self._users += 1
        if self._executor is None:
            self._executor = ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="git-watch")

    def _release_threads(self) -> None:
        """Threads exist only while a subscriber or a scan needs them."""
        self._users -= 1
        if self._users == 0 and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _follow(table: WatchTable, events: list[Event], touches: set[Path], full: bool) -> set[Path]:
    """The repositories to scan after ``events`` (all of them when ``full``)."""
    roots = table.rediscover() if full else table.update(events)
    for path in touches:
        root = table.touch(path)
        if root is not None:
            roots.add(root)
    return roots


def _discover(table: WatchTable, touches: set[Path]) -> set[Path]:
    for path in touches:
        table.touch(path)
    return table.rediscover()
