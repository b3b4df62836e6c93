"""Paths in diff headers: quoted as git quotes them, and read back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatd.agent.git.quoting import header_path, quote, unquote

paths = st.binary(min_size=1, max_size=40).filter(lambda p: b"\0" not in p and b"\n" not in p)


def test_plain_and_special_names() -> None:
    assert quote(b"a/src/main.c") == b"a/src/main.c"
    assert quote(
        "b/caf\u00e9 \xff".encode("utf-8", "surrogateescape")
    ) == "b/caf\u00e9 \xff".encode("utf-8", "surrogateescape")
    assert quote(b'a/we"ird\ttab') == b'"a/we\\"ird\\ttab"'
    assert quote(b"a/back\\slash\x01\x7f") == b'"a/back\\\\slash\\001\\177"'


@given(paths)
def test_quoted_names_read_back(path: bytes) -> None:
    quoted = quote(path)
    if quoted.startswith(b'"'):
        assert unquote(quoted) == (path, len(quoted))
    else:
        assert quoted == path


@given(paths)
def test_header_lines_give_their_path(path: bytes) -> None:
    line = b"diff --git " + quote(b"a/" + path) + b" " + quote(b"b/" + path) + b"\n"
    assert header_path(line) == path
