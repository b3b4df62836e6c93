"""Uploaded chat files: content sniffing, names, and how a stored type is served (§8.2).

Detection looks at the bytes only, then refines plain text by the file's extension. It never
raises: anything unrecognised is ``application/octet-stream``, which uploads reject.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Final

OCTET_STREAM: Final = "application/octet-stream"
SVG: Final = "image/svg+xml"
JSON: Final = "application/json"
PDF: Final = "application/pdf"
GIF: Final = "image/gif"
JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
WEBP: Final = "image/webp"
CSV: Final = "text/csv"
MARKDOWN: Final = "text/markdown"
TEXT: Final = "text/plain"

# The media types an upload may be stored as, in the order the reference lists them.
ALLOWED: Final = (JSON, PDF, GIF, JPEG, PNG, WEBP, CSV, MARKDOWN, TEXT)
# Every value :func:`detect` can return.
DETECTABLE: Final = frozenset({*ALLOWED, SVG, OCTET_STREAM})
# Served with ``Content-Disposition: inline``; everything else is an attachment.
INLINE: Final = frozenset({GIF, JPEG, PNG, WEBP, TEXT, MARKDOWN, CSV, JSON})
# Declaring text/plain is also fine for these more specific text types.
_PLAIN_TEXT_REFINEMENTS: Final = frozenset({MARKDOWN, CSV, JSON})

MAX_NAME_BYTES: Final = 255

_SIGNATURES: Final = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"%PDF-", PDF),
)
_UTF8_BOM: Final = b"\xef\xbb\xbf"
# Bytes that never occur in text: C0 controls other than BEL..CR and ESC, and DEL.
_BINARY_BYTE: Final = re.compile(rb"[\x00-\x06\x0e-\x1a\x1c-\x1f\x7f]")
# How far into a file to look for an SVG root element.
_SVG_WINDOW: Final = 4096
# Things that may precede the root element of an XML document.
_XML_PROLOGUE: Final = re.compile(
    rb"\s+|<\?.*?\?>|<!--.*?-->|<!doctype[^>\[]*(?:\[.*?\])?\s*>", re.DOTALL | re.IGNORECASE
)
_SVG_ROOT: Final = re.compile(rb"<(?:[a-z_][\w.-]*:)?svg[\s/>]", re.IGNORECASE)
_EXTENSION_TYPES: Final = {".md": MARKDOWN, ".markdown": MARKDOWN, ".csv": CSV}


def detect(data: bytes, filename: str = "") -> str:
    """The media type of ``data``; text is refined by ``filename``'s extension."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if _is_svg(data):
        return SVG
    if not _is_text(data):
        return OCTET_STREAM
    extension = _extension(filename)
    if extension == ".json":
        return JSON if _is_json(data) else TEXT
    return _EXTENSION_TYPES.get(extension, TEXT)


def _is_svg(data: bytes) -> bool:
    head = data[:_SVG_WINDOW].removeprefix(_UTF8_BOM)
    position = 0
    while match := _XML_PROLOGUE.match(head, position):
        position = match.end()
    return _SVG_ROOT.match(head, position) is not None


def _is_text(data: bytes) -> bool:
    if _BINARY_BYTE.search(data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _reject_constant(name: str) -> None:
    raise ValueError(f"not JSON: {name}")


def _is_json(data: bytes) -> bool:
    """Strict JSON (no NaN or Infinity), with no limit on how long numbers are."""
    try:
        json.loads(
            data.removeprefix(_UTF8_BOM).decode("utf-8"),
            parse_constant=_reject_constant,
            parse_int=len,
            parse_float=len,
        )
    except (ValueError, RecursionError):
        return False
    return True


def _extension(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot >= 0 else ""


def is_allowed(media_type: str) -> bool:
    return media_type in ALLOWED


def allowed_types_detail() -> str:
    return f"Allowed types: {', '.join(ALLOWED)}."


def compatible(declared: str, detected: str) -> bool:
    """Whether content detected as ``detected`` may be uploaded as ``declared``."""
    return (
        declared == detected
        or declared == OCTET_STREAM
        or (declared == TEXT and detected in _PLAIN_TEXT_REFINEMENTS)
    )


def is_inline(media_type: str) -> bool:
    return media_type in INLINE


def declared_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` header, without parameters."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type or OCTET_STREAM


def normalize_filename(name: str) -> str:
    """Drop control characters, trim whitespace, and cut to 255 UTF-8 bytes."""
    kept = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    encoded = kept.encode("utf-8")
    if len(encoded) <= MAX_NAME_BYTES:
        return kept
    return encoded[:MAX_NAME_BYTES].decode("utf-8", errors="ignore").rstrip()
