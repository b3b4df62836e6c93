"""Real git repositories made for the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def make_repo(path: Path) -> Path:
    """A repository at ``path``: ``main`` with README.md, ``feature`` adding feature.txt."""
    path.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    (path / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=path)
    git("commit", "--quiet", "-m", "first", cwd=path)
    git("checkout", "--quiet", "-b", "feature", cwd=path)
    (path / "feature.txt").write_text("feature\n")
    git("add", "feature.txt", cwd=path)
    git("commit", "--quiet", "-m", "feature", cwd=path)
    git("checkout", "--quiet", "main", cwd=path)
    return path
