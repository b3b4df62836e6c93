"""What subscribers are sent: messages built from repository states, and each
subscriber's unread changes.

A message::

    {"type": "changes", "scanned_at": "2024-05-01T12:00:00.000Z",
     "repositories": [{"repo_root", "branch", "remote_origin", "unified_diff", "removed",
                       "additions", "deletions", "changed_files", "truncated"}],
     "message": "what was cut, and why (only when something was)"}
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatd.agent.git.repo import RepoState


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The diff text one message carries in all (each repository's is already cut at its own
# limit): well inside a protocol frame, however many repositories changed at once.
MESSAGE_DIFF_BUDGET = 8 * 1024 * 1024


def message(
    states: Iterable[RepoState], scanned_at: str, *, budget: int = MESSAGE_DIFF_BUDGET
) -> dict[str, Any]:
    """The message about ``states``. Repositories (in path order) whose diff no longer fits
    in ``budget`` bytes of diff text come without it, marked ``truncated``; their counts stay."""
    ordered = sorted(states, key=lambda state: state.repo_root)
    entries, notes, left = [], [], budget
    for state in ordered:
        entry = state.entry()
        size = len(state.unified_diff.encode("utf-8", "surrogateescape"))
        if size > left:
            entry["unified_diff"], entry["truncated"] = "", True
            notes.append(
                f"{state.repo_root}: diff omitted: the message's {budget // 1024} KiB of diff "
                "went to the repositories before it"
            )
        else:
            left -= size
        entries.append(entry)
    body: dict[str, Any] = {"type": "changes", "scanned_at": scanned_at, "repositories": entries}
    notes[:0] = [f"{state.repo_root}: {state.note}" for state in ordered if state.note]
    if notes:
        body["message"] = "; ".join(notes)
    return body


class Subscriber:
    """What one subscriber has not read yet: the latest state of each repository that
    changed, so a slow reader gets the newest state, never a backlog."""

    def __init__(self) -> None:
        self._pending: dict[Path, RepoState] = {}
        self._due = False  # a message is owed even with no repository in it (the first)
        self._scanned_at = ""
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, states: dict[Path, RepoState], scanned_at: str, *, full: bool) -> None:
        self._pending.update(states)
        self._due = self._due or full
        self._scanned_at = scanned_at
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            if self._pending or self._due:
                states, self._pending, self._due = self._pending, {}, False
                yield message(states.values(), self._scanned_at)
            elif self._closed:
                return
