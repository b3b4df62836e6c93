"""Real git repositories in a temporary directory, with git configured only by the test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

# How long a test waits for a message that must come (a failure, never a pause).
PATIENCE = 10

GITCONFIG = """\
[user]
    name = Test
    email = test@example.com
[init]
    defaultBranch = main
[commit]
    gpgsign = false
[advice]
    detachedHead = false
"""


@pytest.fixture(autouse=True)
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME with its own git config, so the machine's config changes nothing."""
    home = tmp_path / "git-home"
    home.mkdir()
    (home / ".gitconfig").write_text(GITCONFIG)
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    yield home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    directory.mkdir()
    return directory.resolve()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, stdin=subprocess.DEVNULL
    )
    return done.stdout.decode("utf-8", "replace")


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def make_repo(path: Path, files: dict[str, str | bytes] | None = None) -> Path:
    """A repository at ``path`` whose first commit holds ``files``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    for name, content in (files or {}).items():
        write(path / name, content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "--allow-empty", "-m", "first")
    return path.resolve()


def repos_by_root(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["repo_root"]: entry for entry in message["repositories"]}


async def until(
    messages: AsyncIterator[dict[str, Any]],
    wanted: Callable[[dict[str, Any]], bool],
    *,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The first message ``wanted`` accepts (every message read goes to ``seen``)."""
    with anyio.fail_after(PATIENCE):
        async for message in messages:
            if seen is not None:
                seen.append(message)
            if wanted(message):
                return message
    raise AssertionError("the messages ended")


async def next_message(messages: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    """The next message."""
    with anyio.fail_after(PATIENCE):
        return await anext(aiter(messages))
