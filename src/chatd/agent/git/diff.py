"""A repository's diff: one piece per file, cut to size, and exact totals.

Limits (:class:`DiffLimits`):

``per_file`` (default 256 KiB)
    The most diff text one file may take. A file whose diff is longer keeps its header (the
    ``diff --git`` line through ``+++``) and gets one marker line in place of its hunks::

        @@ chatd: diff omitted: 312 KiB exceeds the 256 KiB per-file limit @@

    An untracked file larger than this is not read at all (its lines are not counted).
``per_repository`` (default 2 MiB)
    The most diff text one repository may take. Files are taken in path order; a file whose
    diff no longer fits keeps its header and a marker saying so, and once even that does not
    fit, the remaining files are left out of the text.

Whatever is cut, the totals (``additions``, ``deletions``, ``changed_files``) count every
line of every file, as ``git diff --numstat`` would; the repository is marked ``truncated``
and its note names the files and the reason.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from chatd.agent.git.quoting import header_path
from chatd.agent.paths import text

MARKER = "@@ chatd: diff omitted: {reason} @@\n"
# The note names at most this many files; the rest are counted.
NOTE_NAMES = 10


@dataclass(frozen=True)
class DiffLimits:
    per_file: int = 256 * 1024
    per_repository: int = 2 * 1024 * 1024


@dataclass(eq=False)
class FileDiff:
    """One file's part of the diff. ``body`` (the hunks) is ``None`` once it was not kept;
    ``size`` is the length the whole text had, kept or not; ``omitted`` is the reason the
    body was never there, when the file itself decided it (an untracked file not read)."""

    path: bytes
    header: bytearray
    body: bytearray | None = field(default_factory=bytearray)
    size: int = 0
    additions: int = 0
    deletions: int = 0
    omitted: str | None = None

    def reason(self, limits: DiffLimits) -> str | None:
        if self.omitted is not None:
            return self.omitted
        if self.size > limits.per_file:
            return f"{size_text(self.size)} exceeds the {size_text(limits.per_file)} per-file limit"
        return None


@dataclass(frozen=True)
class Assembled:
    text: str
    additions: int
    deletions: int
    changed_files: int
    truncated: bool
    note: str


class TrackedDiffs:
    """Splits the streamed output of ``git diff`` into :class:`FileDiff` pieces, counting
    added and removed lines as it goes and keeping no more text than the limits allow."""

    def __init__(self, limits: DiffLimits) -> None:
        self.files: list[FileDiff] = []
        self._limits = limits
        self._kept = 0
        self._in_hunks = False
        self._line_start = True

    def feed(self, piece: bytes) -> None:
        at_start = self._line_start
        self._line_start = piece.endswith(b"\n")
        if at_start and piece.startswith(b"diff --git "):
            self.files.append(FileDiff(header_path(piece), bytearray(piece), size=len(piece)))
            self._kept += len(piece)
            self._in_hunks = False
            return
        if not self.files:
            return
        current = self.files[-1]
        current.size += len(piece)
        if not self._in_hunks:
            if not at_start or not piece.startswith((b"@@", b"Binary files ", b"GIT binary")):
                current.header += piece
                self._kept += len(piece)
                return
            self._in_hunks = True
        if at_start:
            if piece.startswith(b"+"):
                current.additions += 1
            elif piece.startswith(b"-"):
                current.deletions += 1
        if current.body is None:
            return
        if current.size > self._limits.per_file or self._kept + len(piece) > (
            self._limits.per_repository
        ):
            self._kept -= len(current.body)
            current.body = None
            return
        current.body += piece
        self._kept += len(piece)


def assemble(files: Iterable[FileDiff], limits: DiffLimits) -> Assembled:
    """The diff text of ``files`` in path order within ``limits``, and the totals."""
    out = bytearray()
    cut: list[str] = []
    over: list[str] = []
    additions = deletions = changed = 0
    budget_marker = MARKER.format(
        reason=f"the repository's diff exceeds the {size_text(limits.per_repository)} limit"
    ).encode()
    for file in sorted(files, key=lambda file: file.path):
        changed += 1
        additions += file.additions
        deletions += file.deletions
        name = text(os.fsdecode(file.path))
        reason = file.reason(limits)
        if reason is None and file.body is not None:
            if len(out) + len(file.header) + len(file.body) <= limits.per_repository:
                out += file.header
                out += file.body
                continue
        marker = MARKER.format(reason=reason).encode() if reason else budget_marker
        if len(out) + len(file.header) + len(marker) > limits.per_repository:
            over.append(name)
            continue
        out += file.header
        out += marker
        if reason is not None:
            cut.append(f"{name} ({reason})")
        else:
            over.append(name)
    notes = []
    if cut:
        notes.append("diff omitted for " + _names(cut))
    if over:
        notes.append(
            f"the repository's diff reached its {size_text(limits.per_repository)} limit, "
            f"so the diff of {len(over)} more file(s) was cut or left out: " + _names(over)
        )
    return Assembled(
        text=out.decode("utf-8", "replace"),
        additions=additions,
        deletions=deletions,
        changed_files=changed,
        truncated=bool(cut or over),
        note="; ".join(notes),
    )


def size_text(size: int) -> str:
    """``312 KiB``, ``2 MiB``, ``5.5 MiB``, ``1 GiB``: rounded up, so a size over a limit
    never reads as the limit itself."""
    if size < 1024 * 1024:
        return f"{math.ceil(size / 1024)} KiB"
    unit, scale = ("MiB", 1024 * 1024) if size < 1024**3 else ("GiB", 1024**3)
    tenths = math.ceil(size * 10 / scale)
    return f"{tenths // 10} {unit}" if tenths % 10 == 0 else f"{tenths / 10:.1f} {unit}"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:NOTE_NAMES])
    if len(names) > NOTE_NAMES:
        shown += f" and {len(names) - NOTE_NAMES} more"
    return shown
