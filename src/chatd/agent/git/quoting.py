"""Paths in diff headers, quoted as git quotes them with ``core.quotePath=off``: a path
holding a control character, a double quote or a backslash is written between double quotes
with C escapes (``"a/we\\"ird\\ttab"``); any other path, UTF-8 or not, is written as is."""

from __future__ import annotations

_NAMED = {
    0x07: b"\\a",
    0x08: b"\\b",
    0x09: b"\\t",
    0x0A: b"\\n",
    0x0B: b"\\v",
    0x0C: b"\\f",
    0x0D: b"\\r",
    0x22: b'\\"',
    0x5C: b"\\\\",
}
_UNNAMED = {value[1]: key for key, value in _NAMED.items()}


def _special(byte: int) -> bool:
    return byte < 0x20 or byte == 0x7F or byte in (0x22, 0x5C)


def quote(name: bytes) -> bytes:
    """``name`` (a path with its ``a/`` or ``b/`` prefix) as a diff header writes it."""
    if not any(_special(byte) for byte in name):
        return name
    out = bytearray(b'"')
    for byte in name:
        if byte in _NAMED:
            out += _NAMED[byte]
        elif _special(byte):
            out += b"\\%03o" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def unquote(text: bytes, start: int = 0) -> tuple[bytes, int]:
    """The value of the quoted string opening at ``text[start]`` and the index just past
    its closing quote. Raises ValueError on a string that is not closed."""
    if text[start : start + 1] != b'"':
        raise ValueError("not a quoted string")
    out = bytearray()
    index = start + 1
    while index < len(text):
        byte = text[index]
        if byte == 0x22:
            return bytes(out), index + 1
        if byte != 0x5C:
            out.append(byte)
            index += 1
            continue
        escape = text[index + 1 : index + 2]
        if escape and escape[0] in _UNNAMED:
            out.append(_UNNAMED[escape[0]])
            index += 2
        elif len(text[index + 1 : index + 4]) == 3 and text[index + 1 : index + 4].isdigit():
            out.append(int(text[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            raise ValueError("a bad escape in a quoted string")
    raise ValueError("a quoted string that is not closed")


def header_path(line: bytes) -> bytes:
    """The path of a ``diff --git a/P b/P`` line written without renames (both sides name
    the same path, so an unquoted line splits in its middle however many spaces P holds)."""
    rest = line[len(b"diff --git ") :].rstrip(b"\n")
    if rest.startswith(b'"'):
        value, _ = unquote(rest)
        return value[2:]
    length = (len(rest) - 5) // 2
    return rest[2 : 2 + length]
