"""The background service that keeps chats' pull-request status fresh from GitHub.

Every ``poll_interval`` seconds (and again at once after a full batch) a pass claims the
diff statuses that are due (:func:`~chatd.store.chat_diff.claim_due_statuses`: stale, on the
configured GitHub, owner with a token) and refreshes them, ``concurrency`` GitHub lookups at a
time. Rows of one owner on one branch (or one pull request) share a lookup. A lookup is:

- the branch's pull requests (``state=all``, newest first; an open one wins), unless the row
  knows only a pull-request URL;
- that pull request, and its reviews.

What it finds is written with the next refresh time (:class:`~chatd.gitsync.schedule.
RefreshPolicy`) and, when anything visible changed, announced to the owner's watchers
(``diff_status_change``). A lookup that fails leaves the status as it was and is tried again
later: after a backoff that doubles with each failure in a row (the first of them logged), or,
when the owner's token is rate limited, once GitHub says the limit resets (the owner's other
rows wait too). Nothing a pass meets stops the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from chatd.events.hub import EventHub
from chatd.github_site import GitHubSite, Repo
from chatd.gitsync.client import GitHubClient
from chatd.gitsync.errors import GitHubError, RateLimited
from chatd.gitsync.pulls import choose_pull, status_columns
from chatd.gitsync.schedule import RefreshPolicy
from chatd.secretbox import SecretError
from chatd.store import git_tokens, stream_log
from chatd.store.chat_diff import (
    NO_PULL_REQUEST,
    claim_due_statuses,
    postpone_refresh,
    save_refresh,
)
from chatd.store.db import Database
from chatd.store.sql import RowDict

log = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 4
DEFAULT_BATCH = 100
# How long a claim keeps other passes (and replicas) off a row: far longer than a lookup takes.
DEFAULT_LEASE = dt.timedelta(minutes=10)
# How long stop() lets a pass under way finish before cancelling it.
STOP_GRACE = 5.0


@dataclass(frozen=True)
class Target:
    """One GitHub lookup: an owner's branch of a repository, or one pull request."""

    owner_id: uuid.UUID
    repo: Repo
    branch: str | None = None
    number: int | None = None


@dataclass
class _Group:
    target: Target
    rows: list[RowDict] = field(default_factory=list)


class Refresher:
    def __init__(
        self,
        db: Database,
        hub: EventHub,
        client: GitHubClient,
        site: GitHubSite,
        *,
        policy: RefreshPolicy | None = None,
        poll_interval: float = 30.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch: int = DEFAULT_BATCH,
        lease: dt.timedelta = DEFAULT_LEASE,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.client = client
        self.site = site
        self.policy = policy or RefreshPolicy()
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.batch = batch
        self.lease = lease
        self.clock = clock or db.now
        self._failures: dict[Target, int] = {}
        self._limited_until: dict[uuid.UUID, dt.datetime] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="chatd-github-refresh")
        log.info("github refresher started", api_url=self.client.api_url)

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        await asyncio.wait({task}, timeout=STOP_GRACE)
        if not task.done():
            task.cancel()  # its claimed rows come back when their lease ends
        await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self.refresh_due()
            except Exception:
                log.exception("github refresh pass failed")
                claimed = 0
            if claimed < self.batch:
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.poll_interval)
                except TimeoutError:
                    pass

    # ---- one pass ----------------------------------------------------------------------------

    async def refresh_due(self) -> int:
        """Claim the statuses due now and refresh them; how many were claimed."""
        now = self.clock()
        lease_until = now + self.lease
        async with self.db.write() as conn:
            rows = await claim_due_statuses(
                conn, now, lease_until=lease_until, host=self.site.host, limit=self.batch
            )
        if not rows:
            return 0
        groups, strays = self._group(rows)
        if strays:  # the host appears in them, but they are not on this GitHub
            await self._postpone(strays, now + self.policy.closed_pr, lease_until)
        tokens = await self._tokens({g.target.owner_id for g in groups})
        places = asyncio.Semaphore(self.concurrency)

        async def run(group: _Group) -> None:
            async with places:
                await self._refresh_group(group, tokens.get(group.target.owner_id), lease_until)

        await asyncio.gather(*(run(g) for g in groups))
        return len(rows)

    def _group(self, rows: Iterable[RowDict]) -> tuple[list[_Group], list[RowDict]]:
        groups: dict[Target, _Group] = {}
        strays: list[RowDict] = []
        for row in rows:
            target = self._target(row)
            if target is None:
                strays.append(row)
            else:
                groups.setdefault(target, _Group(target)).rows.append(row)
        return list(groups.values()), strays

    def _target(self, row: RowDict) -> Target | None:
        branch = row["git_branch"].strip()
        repo = self.site.repo(row["git_remote_origin"]) if branch else None
        if repo is not None:
            return Target(row["owner_id"], repo, branch=branch)
        pull = self.site.pull(row["url"] or "")
        if pull is not None:
            return Target(row["owner_id"], pull.repo, number=pull.number)
        return None

    async def _tokens(self, owner_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        found: dict[uuid.UUID, str] = {}
        async with self.db.read() as conn:
            for owner_id in owner_ids:
                try:
                    token = await git_tokens.get_token(conn, self.db.secrets, owner_id)
                except SecretError as exc:
                    log.warning("github token unreadable", user_id=str(owner_id), error=str(exc))
                    continue
                if token:
                    found[owner_id] = token
        return found

    async def _refresh_group(
        self, group: _Group, token: str | None, lease_until: dt.datetime
    ) -> None:
        target = group.target
        try:
            if token is None:  # removed since the claim, or unreadable
                await self._back_off(group, "no usable token", lease_until)
                return
            limited = self._limited_until.get(target.owner_id)
            if limited is not None and limited > self.clock():
                await self._postpone(group.rows, limited, lease_until)
                return
            try:
                values = await self._look_up(token, target)
            except RateLimited as exc:
                failures = self._failed(target, exc)
                resume = self.policy.after_rate_limit(self.clock(), exc, failures)
                self._limited_until[target.owner_id] = resume
                await self._postpone(group.rows, resume, lease_until)
                return
            except GitHubError as exc:
                await self._back_off(group, exc, lease_until)
                return
            self._recovered(target)
            await self._save(group.rows, values)
        except Exception:
            log.exception("github refresh failed", **_describe(target))

    async def _back_off(self, group: _Group, error: object, lease_until: dt.datetime) -> None:
        failures = self._failed(group.target, error)
        retry_at = self.clock() + self.policy.after_failure(failures)
        await self._postpone(group.rows, retry_at, lease_until)

    async def _look_up(self, token: str, target: Target) -> dict[str, Any]:
        number = target.number
        if number is None:
            assert target.branch is not None
            pulls = await self.client.branch_pulls(token, target.repo, target.branch)
            chosen = choose_pull(pulls)
            if chosen is None:
                return dict(NO_PULL_REQUEST)
            number = chosen.number
        pull = await self.client.pull(token, target.repo, number)
        reviews = await self.client.reviews(token, target.repo, number)
        return status_columns(pull, reviews)

    async def _save(self, rows: list[RowDict], values: dict[str, Any]) -> None:
        now = self.clock()
        stale_at = now + self.policy.after_success(values.get("pull_request_state"))
        for row in rows:
            async with self.db.write() as conn:
                outbox = await save_refresh(conn, now, row, values, stale_at, self.site)
                await stream_log.seal(conn, outbox, now)
            self.hub.publish(outbox)

    async def _postpone(
        self, rows: list[RowDict], stale_at: dt.datetime, lease_until: dt.datetime
    ) -> None:
        async with self.db.write() as conn:
            await postpone_refresh(
                conn, [r["chat_id"] for r in rows], stale_at, claimed_until=lease_until
            )

    def _failed(self, target: Target, error: object) -> int:
        """Count a failure of ``target``'s lookups; the first of a streak is logged."""
        failures = self._failures.get(target, 0) + 1
        self._failures[target] = failures
        if failures == 1:
            log.warning("github refresh failed", error=str(error), **_describe(target))
        return failures

    def _recovered(self, target: Target) -> None:
        if self._failures.pop(target, 0):
            log.info("github refresh recovered", **_describe(target))
        self._limited_until.pop(target.owner_id, None)


def _describe(target: Target) -> dict[str, Any]:
    where: dict[str, Any] = {"repo": target.repo.full_name, "user_id": str(target.owner_id)}
    if target.branch is not None:
        where["branch"] = target.branch
    if target.number is not None:
        where["pr_number"] = target.number
    return where
