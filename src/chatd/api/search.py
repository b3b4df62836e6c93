"""The chat list's ``q`` search grammar and ``label`` filters (api-behaviour §8.1, §6.1).

Pure functions: :func:`parse_query` turns ``q`` into a :class:`~chatd.store.chat_list.ChatFilter`
or raises :class:`SearchError` holding the reference's validations; :func:`parse_labels` turns
the ``label`` values into a map or raises :class:`LabelError`.

The grammar, in short: split on spaces outside double quotes (quotes kept); every token with a
``:`` is an element, all other tokens joined by single spaces form one last element; each
element is ``key:value`` split on the ``:`` outside quotes, with surrounding ``"`` stripped. Key
errors are all collected; tokenizer errors stop at the first.

Lengths are capped (the reference has no cap): ``q`` at :data:`MAX_QUERY_CHARS` characters and
each value at :data:`MAX_VALUE_CHARS`, which is more than any title, PR title or URL a chat
carries, and keeps the substring patterns well inside what the databases take (SQLite refuses
a LIKE pattern over 50,000 bytes). At most :data:`MAX_LABEL_FILTERS` ``label`` filters.
"""

from __future__ import annotations

import string
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TypeVar

from chatd.sdk.errors import ValidationError
from chatd.store.chat_list import PR_STATUSES, ChatFilter

T = TypeVar("T")
INT32_MAX = 2**31 - 1
MAX_QUERY_CHARS = 1024
MAX_VALUE_CHARS = 512
MAX_LABEL_FILTERS = 50
TRUE_WORDS = frozenset({"1", "t", "T", "TRUE", "true", "True"})
FALSE_WORDS = frozenset({"0", "f", "F", "FALSE", "false", "False"})
# Every key the grammar knows, in the order their errors are reported.
KEYS = ("archived", "has_unread", "pr_status", "diff_url", "title", "pr_title", "repo", "pr")
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


class SearchError(Exception):
    """``q`` is invalid; ``validations`` are what the 400 answer lists."""

    def __init__(self, validations: list[ValidationError]) -> None:
        super().__init__("; ".join(v.detail for v in validations))
        self.validations = validations


class LabelError(Exception):
    """A ``label`` value is not ``key:value`` with both sides non-empty, or there are too many."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    @classmethod
    def malformed(cls, raw: str) -> LabelError:
        return cls(
            f"Invalid label filter: {go_quote(raw)} "
            "(expected format key:value, both must be non-empty)"
        )


class _Problem(str):
    """A value check's error detail (distinguishes it from a parsed ``str`` value)."""


def go_quote(text: str) -> str:
    """``text`` double-quoted and escaped the way the reference's messages show values."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where not inside double quotes; empty pieces are dropped."""
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    pieces.append("".join(current))
    return [p for p in pieces if p]


def elements(query: str) -> list[str]:
    """Tokens with a ``:`` in order, then all other tokens joined as one last element."""
    tokens = _split_outside_quotes(query, " ")
    pairs = [t for t in tokens if ":" in t]
    bare = [t for t in tokens if ":" not in t]
    return pairs + ([" ".join(bare)] if bare else [])


def _q_error(detail: str) -> SearchError:
    return SearchError([ValidationError(field="q", detail=detail)])


def tokenize(query: str) -> list[tuple[str, str]]:
    """``(lowercased key, value)`` pairs in query order; raises on the first bad element."""
    pairs: list[tuple[str, str]] = []
    for element in elements(query):
        if element.startswith(":") or element.endswith(":"):
            raise _q_error(f"Query element {go_quote(element)} cannot start or end with ':'")
        pieces = [p.strip('"') for p in _split_outside_quotes(element, ":")]
        if len(pieces) == 1:
            raise _q_error(f"unsupported search term: {go_quote(element)}")
        if len(pieces) > 2:
            raise _q_error(f"Query element {go_quote(element)} can only contain 1 ':'")
        pairs.append((pieces[0].lower(), pieces[1]))
    return pairs


def parse_query(query: str) -> ChatFilter:
    """The filter ``q`` asks for (labels are separate); raises :class:`SearchError`."""
    if len(query) > MAX_QUERY_CHARS:
        raise _q_error(
            f"Query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are allowed"
        )
    values: dict[str, list[str]] = {}
    errors: list[ValidationError] = []
    for key, value in tokenize(query):
        if len(value) > MAX_VALUE_CHARS:
            errors.append(
                ValidationError(
                    field=key,
                    detail=(
                        f"Query param {go_quote(key)} is {len(value)} characters long; "
                        f"at most {MAX_VALUE_CHARS} are allowed"
                    ),
                )
            )
            value = ""  # checked no further
        values.setdefault(key, []).append(value)

    def single(key: str) -> str | None:
        found = values.get(key, [])
        if len(found) > 1:
            errors.append(
                ValidationError(
                    field=key,
                    detail=(
                        f"Query param {go_quote(key)} provided more than once, found {len(found)} "
                        "times. Only provide 1 instance of this query param."
                    ),
                )
            )
            return None
        return found[0] if found and found[0] != "" else None

    def checked(key: str, check: Callable[[str], T | _Problem]) -> T | None:
        raw = single(key)
        if raw is None:
            return None
        result = check(raw)
        if isinstance(result, _Problem):
            errors.append(ValidationError(field=key, detail=str(result)))
            return None
        return result

    archived = checked("archived", _bool_for("archived"))
    has_unread = checked("has_unread", _bool_for("has_unread"))
    pr_statuses = _pr_statuses(values.get("pr_status", []), errors)
    diff_url = checked("diff_url", _diff_url)
    title = single("title")
    pr_title = single("pr_title")
    repo = single("repo")
    pr_number = checked("pr", _pr_number)
    errors += [
        ValidationError(field=key, detail=f"{go_quote(key)} is not a valid query param")
        for key in values
        if key not in KEYS
    ]
    if errors:
        raise SearchError(errors)
    return ChatFilter(
        archived=bool(archived),
        has_unread=has_unread,
        pr_statuses=pr_statuses,
        diff_url=diff_url,
        title=title,
        pr_title=pr_title,
        repo=repo,
        pr_number=pr_number,
    )


def _bool_for(key: str) -> Callable[[str], bool | _Problem]:
    def parse(raw: str) -> bool | _Problem:
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        return _Problem(
            f"Query param {go_quote(key)} must be a valid boolean: "
            f"strconv.ParseBool: parsing {go_quote(raw)}: invalid syntax"
        )

    return parse


def _pr_statuses(raw_values: Sequence[str], errors: list[ValidationError]) -> tuple[str, ...]:
    items = [item.strip().lower() for raw in raw_values for item in raw.split(",")]
    items = [item for item in items if item]
    bad = [item for item in items if item not in PR_STATUSES]
    if bad:
        joined = "\n".join(f"{go_quote(item)} is not a valid value" for item in bad)
        errors.append(
            ValidationError(
                field="pr_status", detail=f'Query param "pr_status" has invalid values: {joined}'
            )
        )
        return ()
    return tuple(status for status in PR_STATUSES if status in items)


def _url_error(raw: str) -> str | None:
    """Why ``raw`` does not parse as a URL at all (URL-parser style), or None."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        return "net/url: invalid control character in URL"
    if raw.startswith(":"):
        return "missing protocol scheme"
    index = raw.find("%")
    while index != -1:
        escape = raw[index : index + 3]
        if len(escape) < 3 or any(c not in string.hexdigits for c in escape[1:]):
            return f"invalid URL escape {go_quote(escape)}"
        index = raw.find("%", index + 3)
    try:
        urllib.parse.urlsplit(raw).port  # noqa: B018 (validates brackets and the port)
    except ValueError as exc:
        return str(exc)
    return None


def _diff_url(raw: str) -> str | _Problem:
    problem = _url_error(raw)
    if problem is not None:
        return _Problem(f"diff_url is not a valid URL: parse {go_quote(raw)}: {problem}")
    parts = urllib.parse.urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return _Problem(f"diff_url must use http or https scheme, got {go_quote(scheme)}")
    if not parts.hostname:
        return _Problem("diff_url must include a host")
    return raw


def _pr_number(raw: str) -> int | _Problem:
    text = raw[1:] if raw.startswith("+") else raw
    if text.isdigit() and text.isascii() and 0 < int(text) <= INT32_MAX:
        return int(text)
    return _Problem(f"{go_quote(raw)} is not a valid positive integer")


def parse_labels(raw_values: Sequence[str]) -> dict[str, str]:
    """``key:value`` filters split at the first colon; a repeated key keeps its last value."""
    if len(raw_values) > MAX_LABEL_FILTERS:
        raise LabelError(
            f"Too many label filters: {len(raw_values)} (at most {MAX_LABEL_FILTERS} are allowed)"
        )
    labels: dict[str, str] = {}
    for raw in raw_values:
        key, sep, value = raw.partition(":")
        if not sep or not key or not value:
            raise LabelError.malformed(raw)
        labels[key] = value
    return labels
