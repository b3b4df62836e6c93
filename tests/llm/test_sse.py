"""Our SSE decoder: any split of the bytes gives the same events, the ones the SDK would give."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai._streaming import SSEDecoder as SDKDecoder

from chatd.llm.sse import SSEDecoder, event_json

# Pieces that, glued in any order, exercise every rule: fields, comments, blank lines, all line
# ends (a CRLF can be cut between its CR and LF), ids that persist, bad retries, non-ASCII text.
PIECES = st.sampled_from(
    [
        b"data: ",
        b"data:",
        b"data",
        b'{"a":1}',
        b"[DONE]",
        b" x",
        b"\xc3\xa9t\xc3\xa9",
        b": keep-alive",
        b":",
        b"event: message",
        b"event:",
        b"id: 7",
        b"id:",
        b"id: a\x00b",
        b"retry: 10",
        b"retry: soon",
        b"other: field",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
    ]
)
STREAMS = st.lists(PIECES, max_size=40).map(b"".join)


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(stream)), len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def ours(chunks: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    return [data for chunk in chunks for data in decoder.feed(chunk)]


def sdks(chunks: list[bytes]) -> list[bytes]:
    return [sse.data.encode() for sse in SDKDecoder().iter_bytes(iter(chunks))]


@given(STREAMS, st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_any_split_gives_the_same_events(stream: bytes, cuts: list[int]) -> None:
    assert ours(split(stream, cuts)) == ours([stream])


@given(STREAMS, st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_events_are_the_sdks(stream: bytes, cuts: list[int]) -> None:
    chunks = split(stream, cuts)
    assert ours(chunks) == sdks(chunks)


@given(st.lists(st.binary(max_size=8), max_size=30))
def test_empty_and_odd_chunks(chunks: list[bytes]) -> None:
    # Arbitrary bytes (no UTF-8 rules: the SDK would refuse some of them, we pass them on).
    assert ours(chunks) == ours([b"".join(chunks)])


def test_openai_stream() -> None:
    body = (
        b'data: {"id":"1"}\n\n: OPENROUTER PROCESSING\n\ndata: {"id":"2"}\r\n\r\ndata: [DONE]\n\n'
    )
    assert ours([body]) == [b'{"id":"1"}', b'{"id":"2"}', b"[DONE]"]


def test_multi_line_data_and_unterminated_tail() -> None:
    assert ours([b"data: a\ndata:b\n\ndata: c\n"]) == [b"a\nb"]


def test_cr_then_lf_in_the_next_chunk_is_one_line_end() -> None:
    assert ours([b"data: a\r", b"\n", b"\r", b"\n"]) == [b"a"]
    assert ours([b"data: a\r", b"\r"]) == [b"a"]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**100), max_value=2**100)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES, st.booleans())
def test_event_json_reads_what_json_loads_reads(value: object, ascii_only: bool) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert event_json(data) == json.loads(data)


def test_event_json_takes_nan_and_infinity() -> None:
    parsed = event_json(b'{"x": NaN, "y": Infinity}')
    assert math.isnan(parsed["x"]) and parsed["y"] == math.inf


@pytest.mark.parametrize("bad", [b"", b"{", b'{"a": 1,}', b"\xff"])
def test_event_json_rejects_what_is_not_json(bad: bytes) -> None:
    with pytest.raises(ValueError):
        event_json(bad)
