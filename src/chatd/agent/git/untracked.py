"""An untracked file as the diff of a new file, written as ``git add -N`` and ``git diff``
would write it (without the ``index`` line): ``new file mode``, ``--- /dev/null``, ``+++
b/<path>`` and one hunk adding every line; a binary file (a NUL byte in its first 8000
bytes, git's test) as ``Binary files /dev/null and b/<path> differ``; a symbolic link as a
file holding its target."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from chatd.agent.git.diff import DiffLimits, FileDiff, size_text
from chatd.agent.git.quoting import quote

BINARY_PROBE = 8000
_NO_NEWLINE = b"\\ No newline at end of file\n"


def render(root: Path, path: bytes, limits: DiffLimits) -> FileDiff | None:
    """The diff of the untracked file ``path`` (relative to ``root``, as git lists it), or
    ``None`` when it is gone or is not a file git would add."""
    full = os.path.join(os.fsencode(root), path)
    try:
        info = os.lstat(full)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unread(path, b"100644", f"cannot read the file ({exc.strerror})")
    if stat.S_ISLNK(info.st_mode):
        mode = b"120000"
        try:
            content = os.readlink(full)
        except OSError as exc:
            return _unread(path, mode, f"cannot read the link ({exc.strerror})")
    elif stat.S_ISREG(info.st_mode):
        mode = b"100755" if info.st_mode & stat.S_IXUSR else b"100644"
        if info.st_size > limits.per_file:
            return _too_large(path, mode, info.st_size, limits)
        try:
            with open(full, "rb") as file:
                content = file.read(limits.per_file + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return _unread(path, mode, f"cannot read the file ({exc.strerror})")
        if len(content) > limits.per_file:  # it grew since we looked
            return _too_large(path, mode, len(content), limits)
    else:
        return None
    return _new_file(path, mode, content)


def _header(path: bytes, mode: bytes, *, lines: bool) -> bytearray:
    header = bytearray(b"diff --git %s %s\n" % (quote(b"a/" + path), quote(b"b/" + path)))
    header += b"new file mode %s\n" % mode
    if lines:
        header += b"--- /dev/null\n+++ %s\n" % quote(b"b/" + path)
    return header


def _new_file(path: bytes, mode: bytes, content: bytes) -> FileDiff:
    if not content:
        header = _header(path, mode, lines=False)
        return FileDiff(path, header, size=len(header))
    if b"\0" in content[:BINARY_PROBE]:
        header = _header(path, mode, lines=False)
        body = bytearray(b"Binary files /dev/null and %s differ\n" % quote(b"b/" + path))
        return FileDiff(path, header, body, size=len(header) + len(body))
    lines = content.split(b"\n")
    complete = content.endswith(b"\n")
    if complete:
        lines.pop()
    count = len(lines)
    header = _header(path, mode, lines=True)
    body = bytearray(b"@@ -0,0 +1 @@\n" if count == 1 else b"@@ -0,0 +1,%d @@\n" % count)
    body += b"+" + b"\n+".join(lines) + b"\n"
    if not complete:
        body += _NO_NEWLINE
    return FileDiff(path, header, body, size=len(header) + len(body), additions=count)


def _too_large(path: bytes, mode: bytes, size: int, limits: DiffLimits) -> FileDiff:
    reason = (
        f"untracked file of {size_text(size)} exceeds the {size_text(limits.per_file)} "
        "per-file limit, not read"
    )
    return _unread(path, mode, reason)


def _unread(path: bytes, mode: bytes, reason: str) -> FileDiff:
    header = _header(path, mode, lines=True)
    return FileDiff(path, header, None, size=len(header), omitted=reason)
