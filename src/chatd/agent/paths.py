"""Paths an operation names: absolute, or relative to the agent's directory, and always
resolving (symlinks followed) inside that directory."""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from chatd.agent import protocol
from chatd.agent.errors import OpError


def resolve(root: Path, path: str) -> Path:
    """The real path of ``path``; ``root`` must itself be resolved. Refuses an empty path,
    a NUL byte, and anything outside ``root`` (``..``, another absolute path, a symlink or a
    symlinked parent pointing out, a dangling symlink pointing out)."""
    if not path:
        raise OpError(protocol.BAD_REQUEST, "the path is empty")
    if "\0" in path:
        raise OpError(protocol.BAD_REQUEST, "the path contains a NUL byte")
    real = Path(os.path.realpath(root / path))
    if not inside(root, real):
        raise OpError(
            protocol.OUTSIDE_WORKSPACE,
            f"{text(path)} is outside the workspace directory {text(root)}; "
            f"only paths inside {text(root)} can be used",
        )
    return real


def inside(root: Path, real: Path) -> bool:
    return real == root or real.is_relative_to(root)


def text(name: str | PurePath) -> str:
    """A file name as text any frame can carry: bytes that are not UTF-8 (which Python keeps
    as lone surrogates) become U+FFFD."""
    value = str(name)
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that did not come from the file system
        return value.encode("utf-8", "replace").decode("utf-8")
