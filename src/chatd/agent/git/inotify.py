"""Linux inotify through ``ctypes`` on libc: ``inotify_init1``, ``inotify_add_watch`` and
``inotify_rm_watch``; the descriptor is non-blocking, to be read when the event loop says it
is readable. Elsewhere (or without those functions) :class:`Inotify` raises
:class:`Unavailable`."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
import threading
from typing import NamedTuple

MODIFY = 0x00000002
ATTRIB = 0x00000004
CLOSE_WRITE = 0x00000008
MOVED_FROM = 0x00000040
MOVED_TO = 0x00000080
CREATE = 0x00000100
DELETE = 0x00000200
DELETE_SELF = 0x00000400
MOVE_SELF = 0x00000800
Q_OVERFLOW = 0x00004000
IGNORED = 0x00008000
ONLYDIR = 0x01000000
DONT_FOLLOW = 0x02000000
EXCL_UNLINK = 0x04000000
ISDIR = 0x40000000

_NONBLOCK = os.O_NONBLOCK
_CLOEXEC = 0o2000000
_HEADER = struct.Struct("iIII")
_READ = 64 * 1024
# Reads per call at most: a flood of events cannot hold the event loop (the descriptor
# stays readable and the rest comes on the next call).
_READS_PER_CALL = 16


class Unavailable(OSError):
    """inotify cannot be used here: not Linux, no such calls, or a kernel limit reached."""


class Event(NamedTuple):
    wd: int
    mask: int
    name: bytes


class Inotify:
    """One inotify instance and its descriptor."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise Unavailable(errno.ENOSYS, "inotify is only on Linux")
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            self._init = libc.inotify_init1
            self._add = libc.inotify_add_watch
            self._rm = libc.inotify_rm_watch
        except AttributeError:
            raise Unavailable(errno.ENOSYS, "libc has no inotify calls") from None
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add.restype = ctypes.c_int
        self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
        self._rm.restype = ctypes.c_int
        fd = self._init(_NONBLOCK | _CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise Unavailable(code, f"inotify_init1: {os.strerror(code)}")
        self.fd: int = fd
        # Watches are added from worker threads: closing waits for them, so a descriptor
        # number the system hands out again is never mistaken for this one.
        self._guard = threading.Lock()

    def add(self, path: str | bytes | os.PathLike[str], mask: int) -> int:
        """A watch on ``path`` (the same descriptor when it is already watched). Raises
        :class:`Unavailable` when the user's watch limit is reached, OSError otherwise."""
        with self._guard:
            if self.fd < 0:
                raise OSError(errno.EBADF, "the inotify descriptor is closed")
            wd = self._add(self.fd, os.fsencode(path), mask)
            code = ctypes.get_errno()
        if wd < 0:
            if code == errno.ENOSPC:
                raise Unavailable(code, "the inotify watch limit is reached")
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return int(wd)

    def remove(self, wd: int) -> None:
        """Drop a watch; one the kernel already dropped (its directory is gone) is fine."""
        with self._guard:
            if self.fd >= 0:
                self._rm(self.fd, wd)

    def read(self) -> list[Event]:
        """Events waiting now (none when there are none: it never blocks)."""
        events: list[Event] = []
        for _ in range(_READS_PER_CALL):
            try:
                data = os.read(self.fd, _READ)
            except BlockingIOError:
                return events
            offset = 0
            while offset + _HEADER.size <= len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                events.append(Event(wd, mask, name))
        return events

    def close(self) -> None:
        with self._guard:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
