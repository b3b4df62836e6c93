"""The ``edit_files`` operation: every edit of every file is computed in memory first, and
files are written only when all of them apply."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from chatd.agent import args as a
from chatd.agent import matching, protocol
from chatd.agent.errors import OpError
from chatd.agent.files import TEXT_FILE_MAX, atomic_write, load, refuse_binary
from chatd.agent.paths import resolve

NOTHING_APPLIED = "Nothing was applied: no file was changed."
# The diffs of one answer hold at most this many characters in all (the rest is cut).
DIFFS_MAX = 2 * 1024 * 1024

_T = TypeVar("_T")


@dataclass
class _File:
    real: Path
    shown: str
    before: str  # LF line endings when the file is all CRLF
    after: str
    crlf: bool


def edit_files(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    try:
        planned = _plan(root, args)
    except OpError as exc:
        raise OpError(exc.code, f"{exc.message} {NOTHING_APPLIED}") from None
    written: list[str] = []
    for file in planned:
        if file.after == file.before:
            continue
        text = file.after.replace("\n", "\r\n") if file.crlf else file.after
        try:
            atomic_write(file.real, file.shown, text.encode("utf-8"))
        except OpError as exc:
            done = f" The edits of {', '.join(written)} were applied." if written else ""
            raise OpError(exc.code, f"{exc.message}.{done}") from None
        written.append(file.shown)
    budget = DIFFS_MAX
    files: list[dict[str, Any]] = []
    for file in planned:
        diff = unified_diff(file.shown, file.before, file.after)
        entry: dict[str, Any] = {"path": file.shown, "diff": diff}
        if len(diff) > budget:
            cut = diff.rfind("\n", 0, budget) + 1
            entry.update(diff=diff[:cut], diff_truncated=True)
        budget -= len(entry["diff"])
        files.append(entry)
    return {"ok": True, "files": files}


def _plan(root: Path, args: dict[str, Any]) -> list[_File]:
    files: dict[Path, _File] = {}
    for file_index, entry in enumerate(a.objects(args, "files")):
        where = f"files[{file_index}]"
        shown = _labelled(where, a.string, entry, "path")
        edits = _labelled(where, a.objects, entry, "edits")
        real = resolve(root, shown)
        file = files.get(real) or _open(real, shown)
        files[real] = file
        for edit_index, edit in enumerate(edits):
            _apply(file, edit, f"{where}.edits[{edit_index}]")
    for file in files.values():
        # Characters were counted as the edits went; bytes (and CRLF endings) count here.
        size = len(file.after.encode("utf-8")) + (file.after.count("\n") if file.crlf else 0)
        if size > TEXT_FILE_MAX:
            raise OpError(
                protocol.TOO_LARGE,
                f"{file.shown}: the edited file would be {size} bytes, over the limit of "
                f"{TEXT_FILE_MAX}.",
            )
    return list(files.values())


def _labelled(where: str, read: Callable[[dict[str, Any], str], _T], *args: Any) -> _T:
    """An argument read by ``read``, its error message prefixed with where it is."""
    try:
        return read(*args)
    except OpError as exc:
        raise OpError(exc.code, f"{where}: {exc.message}") from None


def _open(real: Path, shown: str) -> _File:
    data = load(real, shown, TEXT_FILE_MAX)
    refuse_binary(data, shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OpError(
            protocol.FAILED, f"{shown} is not UTF-8 text; edit_files edits text files only."
        ) from None
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    if crlf:
        text = text.replace("\r\n", "\n")
    return _File(real=real, shown=shown, before=text, after=text, crlf=crlf)


def _apply(file: _File, edit: dict[str, Any], where: str) -> None:
    old = _labelled(where, a.string, edit, "old_text").replace("\r\n", "\n")
    new = _labelled(where, a.string, edit, "new_text").replace("\r\n", "\n")
    replace_all = _labelled(where, a.boolean, edit, "replace_all")
    if not old:
        raise OpError(
            protocol.BAD_REQUEST,
            f"{where} ({file.shown}): old_text is empty; "
            "to create a file or replace all of it use write_file.",
        )
    try:
        file.after = matching.replace(
            file.after, old, new, replace_all=replace_all, limit=TEXT_FILE_MAX
        )
    except matching.TooLarge:
        raise OpError(
            protocol.TOO_LARGE,
            f"{where} ({file.shown}): the edited file would be over the limit of "
            f"{TEXT_FILE_MAX} bytes.",
        ) from None
    except matching.NoMatch:
        raise OpError(
            protocol.EDIT_FAILED,
            f"{where} ({file.shown}): old_text was not found in the file, even ignoring "
            "differences in whitespace; read the file again and copy the text exactly.",
        ) from None
    except matching.Ambiguous as exc:
        raise OpError(
            protocol.EDIT_FAILED,
            f"{where} ({file.shown}): old_text matches {exc.count} places; add surrounding "
            "lines to old_text so it matches one place, or set replace_all to replace all "
            "of them.",
        ) from None


def unified_diff(shown: str, before: str, after: str) -> str:
    """A unified diff of two texts, marking a last line without a newline as git does."""
    lines = difflib.unified_diff(
        matching.split_lines(before), matching.split_lines(after), fromfile=shown, tofile=shown
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
