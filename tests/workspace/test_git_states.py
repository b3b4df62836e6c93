"""GitStates follows a real agent's git watch (a Dispatcher in this process, through JSON as
the wire would carry it): the summary of the main repository, the subscribers' messages, and
the end of the connection."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import anyio
import pytest

from chatd.agent.dispatcher import Dispatcher
from chatd.sdk.git import WorkspaceAgentGitServerMessage
from chatd.store.chat_git_state import GitSummary
from chatd.workspace.git_states import SUBSCRIBER_BACKLOG, GitStates, Signal, Subscriber
from tests.tools.agents import DispatcherConn

pytestmark = pytest.mark.anyio


def git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True)


async def test_the_main_repository_is_summarised_and_subscribers_follow(tmp_path: Path) -> None:
    directory = (tmp_path / "ws").resolve()
    directory.mkdir()
    git(directory, "init", "-q", "-b", "main")
    git(directory, "remote", "add", "origin", "https://tok:secret@example.com/o/r.git")
    summaries: asyncio.Queue[GitSummary] = asyncio.Queue()

    async def on_change(workspace_id: uuid.UUID, summary: GitSummary) -> None:
        summaries.put_nowait(summary)

    states = GitStates(on_change, restart_delay=0.01)
    dispatcher = Dispatcher(directory)
    conn = DispatcherConn(dispatcher, uuid.uuid4(), uuid.uuid4())
    try:
        with states.subscribe(conn.workspace_id) as subscriber:
            states.follow(conn)
            with anyio.fail_after(30):
                first = await summaries.get()
            # The origin is shown without its credentials.
            assert first == GitSummary(branch="main", remote_origin="https://example.com/o/r.git")
            (directory / "notes.txt").write_text("one\ntwo\n")
            with anyio.fail_after(30):
                changed = await summaries.get()
            assert (changed.additions, changed.deletions, changed.changed_files) == (2, 0, 1)
            main = states.main_repository(conn.workspace_id)
            assert main is not None and "+two" in main.unified_diff
            # The subscriber was told of the edit (before any end).
            with anyio.fail_after(30):
                while True:
                    item = await subscriber.queue.get()
                    assert isinstance(item, WorkspaceAgentGitServerMessage), item
                    if any("+two" in repo.unified_diff for repo in item.repositories or []):
                        break
            conn.close()  # the agent goes away: subscribers hear the end
            with anyio.fail_after(30):
                while await subscriber.queue.get() is not Signal.ended:
                    pass
        assert states.main_repository(conn.workspace_id) is None
    finally:
        await states.close()
        await dispatcher.close()


def test_a_slow_subscriber_is_told_to_rescan_and_always_hears_the_end() -> None:
    subscriber = Subscriber()
    message = WorkspaceAgentGitServerMessage(type="changes", repositories=[])
    for _ in range(SUBSCRIBER_BACKLOG + 1):
        subscriber.offer(message)
    assert subscriber.queue.get_nowait() is Signal.lagged
    assert subscriber.queue.empty()
    for _ in range(SUBSCRIBER_BACKLOG):
        subscriber.offer(message)
    subscriber.offer(Signal.ended)  # never dropped, even behind a full queue
    items = [subscriber.queue.get_nowait() for _ in range(subscriber.queue.qsize())]
    assert items[-1] is Signal.ended and len(items) == SUBSCRIBER_BACKLOG + 1
