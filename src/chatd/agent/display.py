"""The small facts of an X server the desktop needs: which display numbers are free, the
authority file that admits only holders of its cookie, and the size of a screen.

X servers find each other through ``/tmp`` whatever ``TMPDIR`` says: display ``:n`` holds
the lock file ``/tmp/.Xn-lock`` and listens on ``/tmp/.X11-unix/Xn``. An X server given its
number refuses to start when a live server holds that lock, so a number that looked free and
was taken meanwhile fails cleanly and the next one is tried. (Left to choose a number itself,
``Xvfb -displayfd`` takes no lock and replaces whatever socket is there: it is not used.)
"""

from __future__ import annotations

import os
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

X_TMP = Path("/tmp")  # noqa: S108 - where every X server keeps its locks and sockets
# The first display number tried; the low numbers belong to real screens.
FIRST_DISPLAY = 20
LAST_DISPLAY = 999

# An Xauthority entry: family, address, display number, protocol name, cookie.
_FAMILY_WILD = 0xFFFF  # any host, any display: the file holds this one cookie only
_COOKIE_NAME = b"MIT-MAGIC-COOKIE-1"
_COOKIE_BYTES = 16

_GEOMETRY = re.compile(r"(\d+)x(\d+)(?:x(\d+))?")
DEPTHS = (8, 16, 24, 32)


@dataclass(frozen=True)
class Geometry:
    """A screen's width and height in pixels and its colour depth in bits."""

    width: int = 1280
    height: int = 800
    depth: int = 24

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"a screen of {self.width}x{self.height} pixels is not supported")
        if self.depth not in DEPTHS:
            raise ValueError(f"a depth of {self.depth} bits is not supported (8, 16, 24, 32)")

    @classmethod
    def parse(cls, text: str) -> Geometry:
        """``WIDTHxHEIGHT`` or ``WIDTHxHEIGHTxDEPTH`` (depth 24 when left out)."""
        match = _GEOMETRY.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not WIDTHxHEIGHT or WIDTHxHEIGHTxDEPTH")
        width, height, depth = match.groups()
        return cls(int(width), int(height), int(depth) if depth else 24)

    def screen(self) -> str:
        """As an X server's ``-screen`` option takes it."""
        return f"{self.width}x{self.height}x{self.depth}"


def lock_file(number: int) -> Path:
    return X_TMP / f".X{number}-lock"


def socket_file(number: int) -> Path:
    return X_TMP / ".X11-unix" / f"X{number}"


def free_displays(first: int = FIRST_DISPLAY, last: int = LAST_DISPLAY) -> Iterator[int]:
    """Display numbers that no X server seems to hold, lowest first: no lock file, and no
    socket (a server that chose its own number may hold one without a lock file, and a new
    server would replace its socket)."""
    for number in range(first, last + 1):
        if not lock_file(number).exists() and not socket_file(number).exists():
            yield number


def write_authority(path: Path) -> None:
    """Write an Xauthority file (mode 0600) holding one fresh random cookie, valid for any
    display: the X server started with it admits only clients that present that cookie."""
    cookie = secrets.token_bytes(_COOKIE_BYTES)
    entry = struct.pack(">H", _FAMILY_WILD) + b"".join(
        _counted(field) for field in (b"", b"", _COOKIE_NAME, cookie)
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(entry)


def _counted(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data
