"""The file operations: ``read_file`` (numbered lines), ``read_bytes`` (base64) and
``write_file`` (atomic), plus the loading and writing helpers the edits share."""

from __future__ import annotations

import base64
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from chatd.agent import args as a
from chatd.agent import protocol
from chatd.agent.errors import OpError
from chatd.agent.paths import resolve

# read_file and edit_files work on text files up to this size.
TEXT_FILE_MAX = 4 * 1024 * 1024
DEFAULT_LINE_LIMIT = 2000
# A longer line is cut at this many characters and marked.
LINE_MAX_CHARS = 2000
# read_file stops adding lines past this many bytes (and says ``truncated``).
READ_FILE_BUDGET = 256 * 1024
# A NUL byte in this many leading bytes makes a file binary.
BINARY_PROBE = 8192
# read_bytes returns at most this much: its base64 must fit in one frame.
READ_BYTES_MAX = (protocol.MAX_FRAME_BYTES - 64 * 1024) // 4 * 3


def _read_umask() -> int:
    # Read once at import (before any thread runs): os.umask can only be read by setting it.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def read_file(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    shown = a.string(args, "path")
    offset = a.integer(args, "offset", default=1, minimum=1)
    limit = a.integer(args, "limit", default=DEFAULT_LINE_LIMIT, minimum=1)
    data = load(resolve(root, shown), shown, TEXT_FILE_MAX)
    refuse_binary(data, shown)
    lines = text_lines(data.decode("utf-8", errors="replace"))
    total = len(lines)
    if offset > max(total, 1):
        raise OpError(
            protocol.BAD_REQUEST,
            f"offset {offset} is past the end of {shown}, which has {total} lines",
        )
    numbered = _numbered(lines[offset - 1 : offset - 1 + limit], offset)
    result: dict[str, Any] = {
        "content": "\n".join(numbered),
        "file_size": len(data),
        "lines_read": len(numbered),
        "total_lines": total,
    }
    if len(numbered) < min(limit, total - offset + 1):
        result["truncated"] = True
    return result


def _numbered(window: list[str], offset: int) -> list[str]:
    """The lines numbered, up to about ``READ_FILE_BUDGET`` bytes in all (at least one)."""
    numbered: list[str] = []
    size = 0
    for number, line in enumerate(window, start=offset):
        entry = f"{number:>6}\t{_cap_line(line)}"
        size += len(entry.encode("utf-8")) + 1
        if numbered and size > READ_FILE_BUDGET:
            break
        numbered.append(entry)
    return numbered


def read_bytes(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    shown = a.string(args, "path")
    max_bytes = min(a.integer(args, "max_bytes", minimum=1), READ_BYTES_MAX)
    data = load(resolve(root, shown), shown, max_bytes)
    if not data:
        raise OpError(protocol.FAILED, f"{shown} is empty")
    return {"data": base64.b64encode(data).decode("ascii"), "size": len(data)}


def write_file(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    shown = a.string(args, "path")
    content = a.string(args, "content")
    real = resolve(root, shown)
    if real.is_dir():
        raise OpError(protocol.FAILED, f"{shown} is a directory")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OpError(
            protocol.FAILED, f"cannot create the directory of {shown}: {_why(exc)}"
        ) from None
    atomic_write(real, shown, content.encode("utf-8"))
    return {"ok": True}


def load(real: Path, shown: str, max_bytes: int) -> bytes:
    """A regular file's bytes, refusing a missing file, a directory and anything larger
    than ``max_bytes``."""
    try:
        info = real.stat()
    except FileNotFoundError:
        raise OpError(protocol.NOT_FOUND, f"{shown} does not exist") from None
    except OSError as exc:
        raise OpError(protocol.FAILED, f"cannot read {shown}: {_why(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise OpError(protocol.FAILED, f"{shown} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise OpError(protocol.FAILED, f"{shown} is not a regular file")
    if info.st_size > max_bytes:
        raise OpError(
            protocol.TOO_LARGE, f"{shown} is {info.st_size} bytes, over the limit of {max_bytes}"
        )
    try:
        with real.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise OpError(protocol.FAILED, f"cannot read {shown}: {_why(exc)}") from None
    if len(data) > max_bytes:  # grew since the stat
        raise OpError(protocol.TOO_LARGE, f"{shown} is over the limit of {max_bytes} bytes")
    return data


def refuse_binary(data: bytes, shown: str) -> None:
    if b"\0" in data[:BINARY_PROBE]:
        raise OpError(protocol.BINARY, f"{shown} is a binary file, not text")


def atomic_write(real: Path, shown: str, data: bytes) -> None:
    """Replace ``real`` with ``data`` through a temporary file in the same directory, so a
    reader sees the old file or the new one. An existing file keeps its mode (and owner,
    where allowed); a new one gets the usual mode for the umask."""
    try:
        existing: os.stat_result | None = real.stat()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise OpError(protocol.FAILED, f"cannot write {shown}: {_why(exc)}") from None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    except OSError as exc:
        raise OpError(protocol.FAILED, f"cannot write {shown}: {_why(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            if existing is None:
                os.fchmod(file.fileno(), 0o666 & ~_UMASK)
            else:
                os.fchmod(file.fileno(), stat.S_IMODE(existing.st_mode))
                _keep_owner(file.fileno(), existing)
        os.replace(temp, real)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise OpError(protocol.FAILED, f"cannot write {shown}: {_why(exc)}") from None


def _keep_owner(fd: int, existing: os.stat_result) -> None:
    if (existing.st_uid, existing.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, existing.st_uid, existing.st_gid)
    except OSError:
        pass  # only root may give a file away; the new file is then the agent's


def text_lines(text: str) -> list[str]:
    """The lines of ``text`` without their endings (LF or CRLF; no other separators)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _cap_line(line: str) -> str:
    if len(line) <= LINE_MAX_CHARS:
        return line
    more = len(line) - LINE_MAX_CHARS
    return f"{line[:LINE_MAX_CHARS]}... [line truncated: {more} more characters]"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
