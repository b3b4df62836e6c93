"""Finding ``old_text`` in a file's text and replacing it with ``new_text``.

Three tries, the first that matches wins: the exact text; then whole lines equal but for
trailing whitespace; then whole lines equal but for all surrounding whitespace, the
replacement re-indented by the difference between the file's indentation and
``old_text``'s. The text is LF only (the caller converts line endings).
"""

from __future__ import annotations

from collections.abc import Callable


class NoMatch(Exception):
    """``old_text`` is not in the text, even ignoring whitespace."""


class TooLarge(Exception):
    """The replaced text would be longer than allowed (found out before it is built)."""


class Ambiguous(Exception):
    """``old_text`` matches several places and replacing all was not asked for."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} matches")
        self.count = count


def replace(text: str, old: str, new: str, *, replace_all: bool, limit: int) -> str:
    """``text`` with ``old`` replaced by ``new``; raises :class:`NoMatch`,
    :class:`Ambiguous`, or :class:`TooLarge` when the result would be longer than ``limit``
    characters."""
    count = text.count(old)
    if count:
        if count > 1 and not replace_all:
            raise Ambiguous(count)
        if len(text) + count * (len(new) - len(old)) > limit:
            raise TooLarge
        return text.replace(old, new, -1 if replace_all else 1)
    for key, reindent in ((str.rstrip, False), (str.strip, True)):
        result = _replace_lines(
            text, old, new, replace_all=replace_all, key=key, reindent=reindent, limit=limit
        )
        if result is not None:
            return result
    raise NoMatch


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, each with its ``\\n`` (the last one may have none)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _replace_lines(
    text: str,
    old: str,
    new: str,
    *,
    replace_all: bool,
    key: Callable[[str], str],
    reindent: bool,
    limit: int,
) -> str | None:
    old_lines = old.split("\n")
    if old.endswith("\n"):
        old_lines.pop()
    wanted = [key(line) for line in old_lines]
    if not any(wanted):
        return None  # only whitespace: it would match any blank line
    lines = split_lines(text)
    keys = [key(line) for line in lines]
    starts = _find(keys, wanted)
    if not starts:
        return None
    if len(starts) > 1 and not replace_all:
        raise Ambiguous(len(starts))
    size = len(wanted)
    out: list[str] = []
    length = 0  # of what ``out`` holds, checked against ``limit`` as it grows
    done = 0
    for start in starts:
        block = lines[start : start + size]
        out.extend(lines[done:start])
        replacement = _reindent(new, old_lines, block) if reindent else new
        out.append(_fit_end(replacement, block[-1].endswith("\n"), old.endswith("\n")))
        length += sum(len(line) for line in lines[done:start]) + len(out[-1])
        if length > limit:
            raise TooLarge
        done = start + size
    out.extend(lines[done:])
    if length + sum(len(line) for line in lines[done:]) > limit:
        raise TooLarge
    return "".join(out)


def _find(keys: list[str], wanted: list[str]) -> list[int]:
    """Where ``wanted`` starts in ``keys``, without overlaps."""
    size = len(wanted)
    starts: list[int] = []
    index = 0
    while index <= len(keys) - size:
        if keys[index] == wanted[0] and keys[index : index + size] == wanted:
            starts.append(index)
            index += size
        else:
            index += 1
    return starts


def _fit_end(replacement: str, block_ends_line: bool, old_ends_line: bool) -> str:
    """The replacement of whole lines ends its last line as the replaced block did (an
    empty replacement removes the lines)."""
    if not replacement:
        return replacement
    if block_ends_line and not replacement.endswith("\n"):
        return replacement + "\n"
    if not block_ends_line and replacement.endswith("\n") and not old_ends_line:
        return replacement[:-1]
    return replacement


def _reindent(new: str, old_lines: list[str], block: list[str]) -> str:
    """``new`` shifted by the difference between the indentation of the first non-blank
    line of ``old_lines`` and that of the file line it matched."""
    first = next(index for index, line in enumerate(old_lines) if line.strip())
    old_indent = _indent(old_lines[first])
    file_indent = _indent(block[first])
    if old_indent == file_indent:
        return new
    delta = len(file_indent) - len(old_indent)
    shifted: list[str] = []
    for line in new.split("\n"):
        lead = _indent(line)
        if not line.strip():
            shifted.append(line)
        elif lead.startswith(old_indent):
            shifted.append(file_indent + line[len(old_indent) :])
        elif delta > 0:
            shifted.append(file_indent[:delta] + line)
        else:
            shifted.append(line[min(-delta, len(lead)) :])
    return "\n".join(shifted)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]
