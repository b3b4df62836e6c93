"""Media-type header values (``Content-Type``, ``Content-Disposition``) as Go's mime package
reads and writes them, since the reference server's clients see exactly that.

Values are text: a caller holding raw header bytes decodes them as UTF-8 first. RFC 2231
``name*=utf-8''...`` parameters are percent-decoded and read as UTF-8 too.
"""

from __future__ import annotations

import re
from typing import Final

_TSPECIALS: Final = frozenset('()<>@,;:\\"/[]?=')
_EXTENDED_VALUE: Final = re.compile(r"([^']*)'[^']*'(.*)", re.DOTALL)
_CONTINUATION: Final = re.compile(r"(.*)\*(\d+)(\*?)", re.DOTALL)
_HEX = "0123456789ABCDEF"


def _is_token_char(ch: str) -> bool:
    return " " < ch < "\x7f" and ch not in _TSPECIALS


def _is_token(text: str) -> bool:
    return text != "" and all(_is_token_char(ch) for ch in text)


def _split_token(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and _is_token_char(text[end]):
        end += 1
    return text[:end], text[end:]


def _split_value(text: str) -> tuple[str, str] | None:
    """A token or quoted-string at the start of ``text``, and what follows; None if neither."""
    if not text.startswith('"'):
        value, rest = _split_token(text)
        return (value, rest) if value else None
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), text[i + 1 :]
        if ch in "\r\n":
            return None
        # A backslash only escapes a tspecial; otherwise it is literal (as browsers send paths).
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _TSPECIALS:
            i += 1
            ch = text[i]
        out.append(ch)
        i += 1
    return None


def _valid_type(media_type: str) -> bool:
    major, rest = _split_token(media_type)
    if not major:
        return False
    if not rest:
        return True
    if not rest.startswith("/"):
        return False
    minor, rest = _split_token(rest[1:])
    return minor != "" and rest == ""


def _percent_decode(text: str) -> bytes | None:
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                return None
            out.append(int(pair, 16))
            i += 3
        else:
            out += text[i].encode("utf-8", errors="replace")
            i += 1
    return bytes(out)


def _decode_extended(value: str) -> bytes | None:
    """``charset'language'percent-encoded`` (RFC 2231); utf-8 and us-ascii only."""
    match = _EXTENDED_VALUE.fullmatch(value)
    if match is None or match.group(1).lower() not in ("utf-8", "us-ascii"):
        return None
    return _percent_decode(match.group(2))


def _join_continuations(pieces: dict[str, str], name: str) -> bytes | None:
    """``name*0``, ``name*1*``, ... joined in order, up to the first missing index."""
    out = bytearray()
    found = False
    for index in range(len(pieces) + 1):
        if (plain := pieces.get(f"{name}*{index}")) is not None:
            out += plain.encode("utf-8", errors="replace")
        elif (encoded := pieces.get(f"{name}*{index}*")) is not None:
            decoded = _decode_extended(encoded) if index == 0 else _percent_decode(encoded)
            out += decoded or b""
        else:
            break
        found = True
    return bytes(out) if found else None


def parse_media_type(header: str) -> tuple[str, dict[str, str]] | None:
    """The lower-cased media type and parameters of a header value, or None if malformed."""
    base, _, _ = header.partition(";")
    media_type = base.strip().lower()
    if not _valid_type(media_type):
        return None
    plain: dict[str, str] = {}
    starred: dict[str, dict[str, str]] = {}
    rest = header[len(base) :]
    while rest := rest.lstrip():
        if not rest.startswith(";"):
            return None
        key, after = _split_token(rest[1:].lstrip())
        after = after.lstrip()
        if not key or not after.startswith("="):
            if rest.strip() == ";":
                break  # a trailing semicolon is tolerated
            return None
        split = _split_value(after[1:].lstrip())
        if split is None:
            return None
        value, rest = split
        key = key.lower()
        group = starred.setdefault(key.split("*", 1)[0], {}) if "*" in key else plain
        if group.get(key, value) != value:
            return None  # the same parameter twice with different values
        group[key] = value
    params = dict(plain)
    for name, pieces in starred.items():
        if f"{name}*" in pieces:
            decoded = _decode_extended(pieces[f"{name}*"])
        else:
            decoded = _join_continuations(pieces, name)
        if decoded is not None:
            params[name] = _utf8(decoded)
    return media_type, params


def _utf8(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def format_media_type(media_type: str, params: dict[str, str]) -> str:
    """A header value with parameters in name order, quoted or RFC 2231-encoded as needed."""
    parts = [media_type.lower()]
    for name in sorted(params):
        value = params[name]
        if any((ch < " " and ch != "\t") or ch > "~" for ch in value):
            encoded = "".join(
                ch if _is_token_char(ch) and ch not in "*'%" else f"%{_HEX[b >> 4]}{_HEX[b & 15]}"
                for ch, b in ((chr(b), b) for b in value.encode("utf-8", errors="replace"))
            )
            parts.append(f"{name.lower()}*=utf-8''{encoded}")
        elif _is_token(value):
            parts.append(f"{name.lower()}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{name.lower()}="{escaped}"')
    return "; ".join(parts)
