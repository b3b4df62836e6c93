"""Property tests of the list search grammar (``q``) and ``label`` filters."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chatd.api.search import (
    FALSE_WORDS,
    MAX_LABEL_FILTERS,
    MAX_QUERY_CHARS,
    MAX_VALUE_CHARS,
    TRUE_WORDS,
    LabelError,
    SearchError,
    elements,
    parse_labels,
    parse_query,
)
from chatd.store.chat_list import PR_STATUSES, ChatFilter

# Any text a value may hold when quoted: everything but the quote character itself. Sizes keep
# a whole query within MAX_QUERY_CHARS.
quotable = st.text(
    st.characters(blacklist_characters='"', blacklist_categories=("Cs",)), min_size=1, max_size=200
)
bare_word = st.text(
    st.characters(blacklist_characters=' ":', blacklist_categories=("Cs",)),
    min_size=1,
    max_size=20,
)
spaces = st.text(" ", min_size=1, max_size=3)


def _case(word: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if f else c for c, f in zip(word, flips + [False] * len(word), strict=False)
    )


@st.composite
def valid_queries(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A query in random element order and spacing, and the filter fields it means."""
    parts: list[str] = []
    expected: dict[str, Any] = {}
    for key in ("title", "pr_title", "repo"):
        if draw(st.booleans()):
            value = draw(quotable)
            parts.append(f'{_case(key, draw(st.lists(st.booleans())))}:"{value}"')
            expected[key] = value
    for key in ("archived", "has_unread"):
        if draw(st.booleans()):
            word = draw(st.sampled_from(sorted(TRUE_WORDS | FALSE_WORDS)))
            parts.append(f"{key}:{word}")
            expected[key] = word in TRUE_WORDS
    if draw(st.booleans()):
        number = draw(st.integers(1, 2**31 - 1))
        parts.append(f"pr:{number}")
        expected["pr_number"] = number
    groups = draw(
        st.lists(st.lists(st.sampled_from(PR_STATUSES), min_size=1, max_size=5), max_size=3)
    )
    for group in groups:
        parts.append(f'pr_status:"{" , ".join(s.upper() for s in group)}"')
    statuses = [s for group in groups for s in group]
    expected["pr_statuses"] = tuple(s for s in PR_STATUSES if s in statuses)
    if draw(st.booleans()):
        path = draw(st.text("abc/-_", max_size=10))
        url = f"https://github.com/{path}"
        parts.append(f'diff_url:"{url}"')
        expected["diff_url"] = url
    order = draw(st.permutations(parts))
    joins = [draw(spaces) for _ in order]
    query = draw(spaces) + "".join(p + s for p, s in zip(order, joins, strict=True))
    return query, expected


@given(valid_queries())
def test_valid_queries_parse_to_their_filters(case: tuple[str, dict[str, Any]]) -> None:
    query, expected = case
    assert parse_query(query) == ChatFilter(**expected)


@given(quotable)
def test_quoted_title_round_trips(text: str) -> None:
    assert parse_query(f'title:"{text}"').title == text


@given(valid_queries(), st.lists(bare_word, min_size=1, max_size=3))
def test_bare_words_always_fail(case: tuple[str, dict[str, Any]], words: list[str]) -> None:
    query, _ = case
    try:
        parse_query(" ".join([words[0], query, *words[1:]]))
    except SearchError as exc:
        (error,) = exc.validations
        assert error.field == "q"
        assert error.detail.startswith("unsupported search term: ")
    else:
        raise AssertionError("a bare word was accepted")


@given(valid_queries(), st.integers(1, 3 * MAX_QUERY_CHARS))
def test_query_longer_than_the_cap_fails_on_its_length(
    case: tuple[str, dict[str, Any]], padding: int
) -> None:
    query = case[0] + " " * max(padding, MAX_QUERY_CHARS + 1 - len(case[0]))
    try:
        parse_query(query)
    except SearchError as exc:
        (error,) = exc.validations
        assert error.field == "q"
        assert error.detail == (
            f"Query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are allowed"
        )
    else:
        raise AssertionError("an over-long query was accepted")


@given(
    st.sampled_from(["title", "pr_title", "repo", "diff_url", "pr", "archived"]),
    st.integers(MAX_VALUE_CHARS + 1, MAX_QUERY_CHARS - 40),
)
def test_value_longer_than_the_cap_fails_on_its_key(key: str, length: int) -> None:
    try:
        parse_query(f'has_unread:true {key}:"{"x" * length}"')
    except SearchError as exc:
        details = {v.field: v.detail for v in exc.validations}
        assert details[key] == (
            f'Query param "{key}" is {length} characters long; '
            f"at most {MAX_VALUE_CHARS} are allowed"
        )
    else:
        raise AssertionError("an over-long value was accepted")


@given(st.text())
def test_parser_raises_only_its_own_error(query: str) -> None:
    try:
        flt = parse_query(query)
    except SearchError as exc:
        assert exc.validations
    else:
        assert isinstance(flt, ChatFilter)


@given(st.lists(st.text(st.characters(blacklist_characters='"'))))
def test_unquoted_tokens_split_on_spaces(words: list[str]) -> None:
    query = " ".join(words)
    tokens = [t for t in query.split(" ") if t]
    with_colon = [t for t in tokens if ":" in t]
    without = [t for t in tokens if ":" not in t]
    assert elements(query) == with_colon + ([" ".join(without)] if without else [])


label_key = st.text(
    st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), min_size=1
)
label_value = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1)


@given(st.lists(st.tuples(label_key, label_value), max_size=MAX_LABEL_FILTERS))
def test_labels_round_trip_last_value_wins(pairs: list[tuple[str, str]]) -> None:
    assert parse_labels([f"{k}:{v}" for k, v in pairs]) == dict(pairs)


@given(st.lists(st.text(), max_size=2 * MAX_LABEL_FILTERS))
def test_labels_raise_only_label_error(values: list[str]) -> None:
    try:
        labels = parse_labels(values)
    except LabelError as exc:
        if len(values) > MAX_LABEL_FILTERS:
            assert exc.message == (
                f"Too many label filters: {len(values)} (at most {MAX_LABEL_FILTERS} are allowed)"
            )
        else:
            assert exc.message.startswith("Invalid label filter: ")
    else:
        assert all(k and ":" not in k and v for k, v in labels.items())
        assert len(labels) <= len(values)
