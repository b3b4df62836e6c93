"""The upload sniffer, filename normalisation and media-type header values."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chatd import filetypes as ft
from chatd.mediatype import format_media_type, parse_media_type


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00", "x.txt", ft.PNG),
        (b"\xff\xd8\xff\xdb", "", ft.JPEG),
        (b"GIF87a...", "", ft.GIF),
        (b"GIF89a...", "a.md", ft.GIF),
        (b"RIFF\x00\x00\x00\x00WEBPVP8L", "", ft.WEBP),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "", ft.OCTET_STREAM),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3", "", ft.PDF),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "", ft.SVG),
        (b"<SVG>", "", ft.SVG),
        (b"\xef\xbb\xbf  \n<?xml version='1.0'?><!-- c --><!DOCTYPE svg><svg/>", "", ft.SVG),
        (b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" [ <!ENTITY x "y"> ]><svg>', "", ft.SVG),
        (b"<svg:svg xmlns:svg='http://www.w3.org/2000/svg'/>", "", ft.SVG),
        (b"<svgfoo/>", "", ft.TEXT),
        (b"<?xml version='1.0'?><note/>", "n.xml", ft.TEXT),
        (b"<html><body><svg></svg></body></html>", "", ft.TEXT),
        (b"", "empty", ft.TEXT),
        (b"hello\tworld\r\n\x0c\x1b[0m", "", ft.TEXT),
        ("caf\u00e9 \u2713".encode(), "", ft.TEXT),
        (b"\xef\xbb\xbfwith bom", "", ft.TEXT),
        (b"nul\x00byte", "a.txt", ft.OCTET_STREAM),
        (b"bell\x01", "a.txt", ft.OCTET_STREAM),
        (b"del\x7f", "a.txt", ft.OCTET_STREAM),
        (b"bad \xff utf-8", "a.txt", ft.OCTET_STREAM),
        (b'{"a": 1}', "d.json", ft.JSON),
        (b'{"a": 1}', "D.JSON", ft.JSON),
        (b'\xef\xbb\xbf{"a": 1}', "d.json", ft.JSON),
        (b"1" * 5000, "big.json", ft.JSON),
        (b'{"a": 1}', "d.txt", ft.TEXT),
        (b"{'a': 1}", "d.json", ft.TEXT),
        (b"NaN", "d.json", ft.TEXT),
        (b"[" * 100_000, "deep.json", ft.TEXT),
        (b"# hi", "a.md", ft.MARKDOWN),
        (b"# hi", "a.Markdown", ft.MARKDOWN),
        (b"a,b", "dir/a.csv", ft.CSV),
        (b"a,b", "a.csv.txt", ft.TEXT),
        (b"a,b", ".csv", ft.CSV),
        (b"a,b", "csv", ft.TEXT),
    ],
)
def test_detect(data: bytes, name: str, expected: str) -> None:
    assert ft.detect(data, name) == expected


@given(st.binary(max_size=2048), st.text(max_size=40))
@example(b"\xef\xbb\xbf<!--", "a.json")
@example(b"<!DOCTYPE [", "")
def test_detect_never_raises_and_stays_in_the_known_set(data: bytes, name: str) -> None:
    assert ft.detect(data, name) in ft.DETECTABLE


@given(st.text(max_size=200), st.sampled_from(["a.txt", "a.md", "a.csv", "a.json", "a"]))
def test_utf8_text_is_always_allowed(text: str, name: str) -> None:
    cleaned = "".join(ch for ch in text if (ch >= " " and ch != "\x7f") or ch in "\t\n\r")
    data = cleaned.replace("<", "").encode()
    assert ft.detect(data, name) in {ft.TEXT, ft.MARKDOWN, ft.CSV, ft.JSON}


def test_allowed_types_and_inline_rules() -> None:
    assert ft.allowed_types_detail() == (
        "Allowed types: application/json, application/pdf, image/gif, image/jpeg, image/png, "
        "image/webp, text/csv, text/markdown, text/plain."
    )
    assert not ft.is_allowed(ft.SVG)
    assert not ft.is_allowed(ft.OCTET_STREAM)
    assert {t for t in ft.ALLOWED if not ft.is_inline(t)} == {ft.PDF}
    assert not ft.is_inline(ft.SVG)


def test_declared_type() -> None:
    assert ft.declared_type(None) == ft.OCTET_STREAM
    assert ft.declared_type("") == ft.OCTET_STREAM
    assert ft.declared_type(" ; charset=utf-8") == ft.OCTET_STREAM
    assert ft.declared_type("Text/Plain; charset=utf-8") == ft.TEXT


@pytest.mark.parametrize(
    ("declared", "detected", "ok"),
    [
        (ft.PNG, ft.PNG, True),
        (ft.OCTET_STREAM, ft.PDF, True),
        (ft.TEXT, ft.MARKDOWN, True),
        (ft.TEXT, ft.CSV, True),
        (ft.TEXT, ft.JSON, True),
        (ft.TEXT, ft.PNG, False),
        (ft.MARKDOWN, ft.TEXT, False),
        (ft.JSON, ft.TEXT, False),
        (ft.CSV, ft.MARKDOWN, False),
        (ft.JPEG, ft.PNG, False),
    ],
)
def test_compatible(declared: str, detected: str, ok: bool) -> None:
    assert ft.compatible(declared, detected) is ok


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.png", "a.png"),
        ("  a b.png \t", "a b.png"),
        ("a\x00b\x1fc\x7fd\x85e.txt", "abcde.txt"),
        ("\u00a0 x \u3000", "x"),
        ("\x01\x02", ""),
        ("n" * 300, "n" * 255),
        ("\u00e9" * 200, "\u00e9" * 127),  # 2-byte characters: never split one
        ("n" * 254 + " \u2713", "n" * 254),  # truncation leaves no trailing space
    ],
)
def test_normalize_filename(raw: str, expected: str) -> None:
    assert ft.normalize_filename(raw) == expected


@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=400))
@example("\ud800 a\udfff")
@example(" " + "\u00e9" * 130 + "\x00")
def test_normalized_names_are_short_clean_and_stable(raw: str) -> None:
    name = ft.normalize_filename(raw)
    encoded = name.encode("utf-8")  # raises if not valid UTF-8 (e.g. a lone surrogate)
    assert len(encoded) <= ft.MAX_NAME_BYTES
    assert not any(unicodedata.category(ch) == "Cc" for ch in name)
    assert name == name.strip()
    assert ft.normalize_filename(name) == name


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="a.png"', ("attachment", {"filename": "a.png"})),
        ("Attachment ; Filename = a.png ;", ("attachment", {"filename": "a.png"})),
        ('inline; filename="C:\\dir\\a.txt"', ("inline", {"filename": "C:\\dir\\a.txt"})),
        ('inline; filename="say \\"hi\\""', ("inline", {"filename": 'say "hi"'})),
        ("inline; filename*=UTF-8'en'%E2%9C%93", ("inline", {"filename": "\u2713"})),
        ("inline; filename=a; filename*=utf-8''b", ("inline", {"filename": "b"})),
        ("inline; filename=a; filename*=latin-1''b", ("inline", {"filename": "a"})),
        ("inline; filename=a; filename*=utf-8''%zz", ("inline", {"filename": "a"})),
        (
            "inline; filename*0=a; filename*1*=%E2%9C; filename*2*=%93",
            ("inline", {"filename": "a\u2713"}),
        ),
        ("inline; filename=a; filename=a", ("inline", {"filename": "a"})),
        ("text/plain; charset=utf-8", ("text/plain", {"charset": "utf-8"})),
    ],
)
def test_parse_media_type(header: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_media_type(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "",
        "; filename=a",
        "text/",
        "a/b/c",
        "inline; filename",
        "inline; filename=",
        'inline; filename="open',
        "inline; filename=a; filename=b",
        "inline filename=a",
    ],
)
def test_parse_media_type_rejects(header: str) -> None:
    assert parse_media_type(header) is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "inline"),
        ({"filename": "a.png"}, "inline; filename=a.png"),
        ({"filename": "my file.png"}, 'inline; filename="my file.png"'),
        ({"filename": 'a"b\\c'}, 'inline; filename="a\\"b\\\\c"'),
        ({"filename": ""}, 'inline; filename=""'),
        ({"filename": "\u2713 100%.png"}, "inline; filename*=utf-8''%E2%9C%93%20100%25.png"),
        ({"b": "2", "A": "1"}, "inline; a=1; b=2"),
    ],
)
def test_format_media_type(params: dict[str, str], expected: str) -> None:
    assert format_media_type("inline", params) == expected


@given(st.text(max_size=100))
def test_parse_never_raises(header: str) -> None:
    result = parse_media_type(header)
    assert result is None or isinstance(result[1], dict)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=100))
def test_format_then_parse_round_trips(value: str) -> None:
    assert parse_media_type(format_media_type("attachment", {"filename": value})) == (
        "attachment",
        {"filename": value},
    )
