"""Directories and files only their owner may read: created so from the first byte.

A file is never created with the default mode and narrowed afterwards (between the two, any
user on the host could open it and keep the descriptor). New files are opened with
``O_CREAT | O_EXCL`` and mode 0600, new directories made with mode 0700; a umask can only
narrow these further. Files and directories that already exist with wider modes (made by an
older chatd) are narrowed when chatd opens them again, which is then the only fix there is.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a directory; ``path`` itself 0700.

    Parents that have to be made get mode 0700 too; existing parents are left alone.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            directory.mkdir(mode=PRIVATE_DIR_MODE)
    narrow(path, PRIVATE_DIR_MODE)
    return path


def narrow(path: Path, mode: int) -> bool:
    """Take away the permission bits of ``path`` that ``mode`` does not grant, if it exists;
    whether there were any."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return False
    if not current & ~mode:
        return False
    os.chmod(path, current & mode)
    return True


def open_private(path: Path, flags: int) -> int:
    """``os.open`` of ``path`` with ``O_CREAT``: a new file is 0600, an old one narrowed to it."""
    fd = os.open(path, flags | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    current = stat.S_IMODE(os.fstat(fd).st_mode)
    if current & ~PRIVATE_FILE_MODE:
        os.fchmod(fd, current & PRIVATE_FILE_MODE)
    return fd


def _write_temporary(directory: Path, prefix: str, data: bytes) -> Path:
    """A new 0600 file in ``directory`` holding ``data``, flushed to disk."""
    # mkstemp opens with O_CREAT | O_EXCL and mode 0600.
    fd, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) holding ``data``; raises ``FileExistsError`` if it exists.

    The content is written to a new 0600 file first and then linked into place, which fails
    if ``path`` exists: a reader (or a second process racing to create the same file) sees
    either no file or the whole of one, never a half-written one.
    """
    tmp = _write_temporary(path.parent, f".{path.name}-", data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()
    sync_dir(path.parent)


def replace_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600) atomically, replacing any file there."""
    tmp = _write_temporary(path.parent, f".{path.name}-", data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink()
        raise
    sync_dir(path.parent)
