"""GitWatcher.subscribe: a full message first, then only what changed, as it changes."""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import select
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chatd.agent.git import GitWatcher, discover, inotify
from chatd.agent.git.watches import WatchTable
from tests.agent.git.conftest import (
    git,
    make_repo,
    next_message,
    repos_by_root,
    until,
    write,
)

pytestmark = pytest.mark.anyio

DEBOUNCE = 0.05


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The agent runs on uvloop where it is installed: the watcher works on both loops."""
    return request.param  # type: ignore[no-any-return]


def inotify_fds() -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                count += 1
        except OSError:
            continue
    return count


def watch_threads() -> int:
    return sum(thread.name.startswith("git-watch") for thread in threading.enumerate())


def has(root: Path, **fields: Any) -> Any:
    """A predicate: the message holds ``root`` with these field values."""

    def check(message: dict[str, Any]) -> bool:
        entry = repos_by_root(message).get(str(root))
        return entry is not None and all(entry[k] == v for k, v in fields.items())

    return check


@pytest.fixture
async def watcher(workspace: Path) -> AsyncIterator[GitWatcher]:
    watcher = GitWatcher(workspace, debounce=DEBOUNCE)
    yield watcher
    await watcher.close()


async def test_first_a_full_message_then_what_changed(workspace: Path, watcher: GitWatcher) -> None:
    first = make_repo(workspace / "first", {"a.txt": "a\n"})
    second = make_repo(workspace / "second", {"b.txt": "b\n"})
    async with watcher.subscribe() as messages:
        full = await next_message(messages)
        assert full["type"] == "changes"
        assert set(repos_by_root(full)) == {str(first), str(second)}
        write(first / "a.txt", "edited\n")
        changed = await until(messages, has(first, changed_files=1))
        assert set(repos_by_root(changed)) == {str(first)}
        assert "-a\n+edited\n" in changed["repositories"][0]["unified_diff"]
        write(first / "new.txt", "new\n")
        changed = await until(messages, has(first, changed_files=2))
        assert set(repos_by_root(changed)) == {str(first)}
        (first / "a.txt").write_text("a\n")
        (first / "new.txt").unlink()
        await until(messages, has(first, changed_files=0, unified_diff=""))


async def test_commit_branch_switch_and_origin(workspace: Path, watcher: GitWatcher) -> None:
    repo = make_repo(workspace, {"a.txt": "a\n"})
    write(repo / "a.txt", "b\n")
    async with watcher.subscribe() as messages:
        full = await next_message(messages)
        assert repos_by_root(full)[str(repo)]["changed_files"] == 1
        git(repo, "commit", "-q", "-am", "second")
        await until(messages, has(repo, unified_diff="", changed_files=0, branch="main"))
        git(repo, "checkout", "-q", "-b", "feature")
        await until(messages, has(repo, branch="feature"))
        git(repo, "remote", "add", "origin", "https://example.com/x.git")
        await until(messages, has(repo, remote_origin="https://example.com/x.git"))
        git(repo, "checkout", "-q", "main")
        git(repo, "branch", "-q", "-D", "feature")
        await until(messages, has(repo, branch="main"))
        # Staging alone changes nothing that is sent; a commit on top of it does.
        write(repo / "c.txt", "c\n")
        await until(messages, has(repo, changed_files=1))
        git(repo, "add", "c.txt")
        git(repo, "commit", "-q", "-m", "third")
        await until(messages, has(repo, changed_files=0))


async def test_new_repositories_are_found(
    workspace: Path, watcher: GitWatcher, tmp_path: Path
) -> None:
    source = make_repo(tmp_path / "source", {"readme": "hello\n"})
    async with watcher.subscribe() as messages:
        full = await next_message(messages)
        assert full["repositories"] == []
        (workspace / "a" / "b").mkdir(parents=True)
        git(workspace / "a" / "b", "init", "-q")
        await until(messages, has(workspace / "a" / "b", branch="main"))
        git(workspace, "clone", "-q", str(source), "cloned")
        await until(messages, has(workspace / "cloned", remote_origin=str(source)))
        # A repository made elsewhere and moved in.
        make_repo(tmp_path / "elsewhere", {"x": "x\n"})
        os.rename(tmp_path / "elsewhere", workspace / "a" / "moved")
        await until(messages, has(workspace / "a" / "moved", branch="main"))
        write(workspace / "a" / "moved" / "x", "y\n")
        await until(messages, has(workspace / "a" / "moved", changed_files=1))


async def test_a_removed_repository_is_reported_once(workspace: Path, watcher: GitWatcher) -> None:
    gone = make_repo(workspace / "gone", {"a": "a\n"})
    stays = make_repo(workspace / "stays", {"b": "b\n"})
    async with watcher.subscribe() as messages:
        await next_message(messages)
        shutil.rmtree(gone)
        removed = await until(messages, has(gone, removed=True))
        assert repos_by_root(removed)[str(gone)] == {
            "repo_root": str(gone),
            "branch": "",
            "remote_origin": "",
            "unified_diff": "",
            "removed": True,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
            "truncated": False,
        }
        write(stays / "b", "c\n")
        seen: list[dict[str, Any]] = []
        await until(messages, has(stays, changed_files=1), seen=seen)
        assert all(str(gone) not in repos_by_root(message) for message in seen)
        # Only .git goes: the directory stays, and is no repository any more.
        shutil.rmtree(stays / ".git")
        await until(messages, has(stays, removed=True))


async def test_a_burst_of_writes_is_one_or_two_messages(
    workspace: Path, watcher: GitWatcher
) -> None:
    repo = make_repo(workspace, {"a": "a\n"})
    async with watcher.subscribe() as messages:
        await next_message(messages)
        for index in range(50):
            write(repo / f"burst{index}.txt", f"{index}\n")
            await asyncio.sleep(0.001)
        seen: list[dict[str, Any]] = []
        await until(messages, has(repo, changed_files=50), seen=seen)
        assert 1 <= len(seen) <= 2


async def test_no_subscriber_no_watches_and_no_threads(workspace: Path) -> None:
    repo = make_repo(workspace, {"a": "a\n"})
    before = inotify_fds()
    watcher = GitWatcher(workspace, debounce=DEBOUNCE)
    assert await watcher.scan()
    assert not watcher.watching and inotify_fds() == before
    async with watcher.subscribe() as messages:
        await next_message(messages)
        assert watcher.watching and inotify_fds() == before + 1
        assert watcher.watch_count > 0
        # A second subscriber gets everything too, and shares the watches.
        async with watcher.subscribe() as others:
            assert has(repo)(await next_message(others))
            assert inotify_fds() == before + 1
        write(repo / "a", "b\n")
        await until(messages, has(repo, changed_files=1))
    assert not watcher.watching and inotify_fds() == before
    assert watcher.watch_count == 0
    with anyio.fail_after(10):  # the threads end soon after they are let go
        for _ in itertools.count():
            if not watch_threads():
                break
            await anyio.sleep(0.01)
    await watcher.close()


async def test_touch_adds_a_repository_outside_the_directory(
    workspace: Path, watcher: GitWatcher, tmp_path: Path
) -> None:
    outside = make_repo(tmp_path / "outside", {"src/main.c": "int main;\n"})
    assert (await watcher.scan())["repositories"] == []
    async with watcher.subscribe() as messages:
        assert (await next_message(messages))["repositories"] == []
        write(outside / "src" / "main.c", "int main(void);\n")
        watcher.touch(outside / "src" / "main.c")
        await until(messages, has(outside, changed_files=1))
        write(outside / "src" / "other.c", "x\n")
        await until(messages, has(outside, changed_files=2))
    assert has(outside)(await watcher.scan())
    # Touching a path in no repository changes nothing.
    watcher.touch(tmp_path / "nowhere" / "file")
    assert set(repos_by_root(await watcher.scan())) == {str(outside)}


async def test_ignored_directories_are_not_watched(workspace: Path, watcher: GitWatcher) -> None:
    repo = make_repo(workspace, {".gitignore": "node_modules/\n", "a": "a\n"})
    for index in range(30):
        write(repo / "node_modules" / f"pkg{index}" / "lib" / "index.js", "x\n")
    async with watcher.subscribe() as messages:
        await next_message(messages)
        # The work tree's root, .git and refs/heads: none of node_modules.
        assert watcher.watch_count == 3
        (repo / "src").mkdir()
        write(repo / "src" / "new.py", "pass\n")
        await until(messages, has(repo, changed_files=1))
        assert watcher.watch_count == 4
        write(repo / "node_modules" / "fresh" / "index.js", "y\n")
        write(repo / "a", "b\n")
        changed = await until(messages, has(repo, changed_files=2))
        assert "node_modules" not in changed["repositories"][0]["unified_diff"]
        assert watcher.watch_count == 4


async def test_polling_when_inotify_cannot_be_used(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    repo = make_repo(workspace, {"a": "a\n"})

    def full(self: inotify.Inotify, path: object, mask: int) -> int:
        raise inotify.Unavailable(errno.ENOSPC, "the inotify watch limit is reached")

    monkeypatch.setattr(inotify.Inotify, "add", full)
    watcher = GitWatcher(workspace, debounce=DEBOUNCE, poll_interval=0.05)
    before = inotify_fds()
    with caplog.at_level(logging.WARNING, logger="chatd.agent"):
        async with watcher.subscribe() as messages:
            assert has(repo, changed_files=0)(await next_message(messages))
            assert watcher.polling and inotify_fds() == before
            write(repo / "a", "b\n")
            await until(messages, has(repo, changed_files=1))
            make_repo(workspace / "later")
            await until(messages, has(workspace / "later", branch="main"))
        async with watcher.subscribe() as messages:
            await next_message(messages)
    await watcher.close()
    said = [r.getMessage() for r in caplog.records if "polling" in r.getMessage()]
    assert said == [
        "git watch: inotify cannot be used (the inotify watch limit is reached); "
        "polling every 0.05 s instead"
    ]


async def test_commits_in_a_linked_work_tree(workspace: Path, watcher: GitWatcher) -> None:
    main = make_repo(workspace / "main", {"a.txt": "a\n"})
    git(main, "worktree", "add", "-q", "-b", "side", str(workspace / "linked"))
    linked = (workspace / "linked").resolve()
    async with watcher.subscribe() as messages:
        full = await next_message(messages)
        assert set(repos_by_root(full)) == {str(main), str(linked)}
        write(linked / "a.txt", "side\n")
        await until(messages, has(linked, changed_files=1))
        git(linked, "commit", "-q", "-am", "on the side")
        await until(messages, has(linked, changed_files=0))
        git(linked, "checkout", "-q", "-b", "other")
        await until(messages, has(linked, branch="other"))


async def test_a_lost_event_queue_means_everything_is_looked_at_again(workspace: Path) -> None:
    repo = make_repo(workspace, {"a": "a\n"})
    watches = inotify.Inotify()
    table = WatchTable(workspace, watches, touched=set(), timeout=30)
    try:
        assert table.rediscover() == {repo}
        later = make_repo(workspace / "later")
        overflow = inotify.Event(-1, inotify.Q_OVERFLOW, b"")
        assert table.update([overflow]) == {repo, later}
        assert table.watch_count == 6  # two work tree roots, two .git, two refs/heads
    finally:
        watches.close()


def test_a_directory_made_before_its_parent_is_watched_is_not_missed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory created between a walk's listing and the watch on its parent gives no
    event: the table looks again once the watches are in place."""
    repo = make_repo(workspace, {"a": "a\n"})
    real_walk = discover.walk
    made: list[Path] = []

    def walk_then_mkdir(start: Path, *args: Any, **kwargs: Any) -> discover.Found:
        found = real_walk(start, *args, **kwargs)
        if not made:  # the first walk lists the tree; then a directory appears
            made.append(workspace / "late")
            (workspace / "late" / "deeper").mkdir(parents=True)
        return found

    monkeypatch.setattr(discover, "walk", walk_then_mkdir)
    watches = inotify.Inotify()
    table = WatchTable(workspace, watches, touched=set(), timeout=30)
    try:
        assert table.rediscover() == {repo}
        watched = table.watch_count
        # The late directory and the one inside it are watched: a file made there is seen.
        write(workspace / "late" / "deeper" / "f", "f\n")
        assert select.select([watches.fd], [], [], 10)[0], "no event from the late directory"
        assert table.update(watches.read()) == {repo}
        assert watched == 5  # root, late, late/deeper, .git, refs/heads
    finally:
        watches.close()
