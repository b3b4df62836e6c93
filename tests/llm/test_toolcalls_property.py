"""Any split of tool-call argument strings, with or without index, yields the same calls."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from chatd.llm.toolcalls import ToolCallAssembler

ARGS = st.dictionaries(
    st.text(min_size=1, max_size=8), st.one_of(st.integers(), st.text(max_size=12)), max_size=4
)


@st.composite
def calls_and_splits(draw: st.DrawFn) -> tuple[list[tuple[str, str, str]], list[list[str]]]:
    count = draw(st.integers(min_value=1, max_value=4))
    calls = []
    splits = []
    for n in range(count):
        args_json = json.dumps(draw(ARGS))
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(args_json) - 1)), max_size=6)))
        bounds = [0, *[c for c in cuts if c < len(args_json)], len(args_json)]
        splits.append([args_json[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
        calls.append((f"call_{n}", f"tool_{n}", args_json))
    return calls, splits


@given(calls_and_splits(), st.booleans(), st.booleans())
def test_any_split_yields_the_same_calls(
    data: tuple[list[tuple[str, str, str]], list[list[str]]], with_index: bool, with_id: bool
) -> None:
    calls, splits = data
    assembler = ToolCallAssembler()
    for index, ((call_id, name, _), pieces) in enumerate(zip(calls, splits, strict=True)):
        for n, piece in enumerate(pieces):
            first = n == 0
            assembler.feed(
                index if with_index else None,
                call_id if (first or with_index) and with_id else None,
                name if first else None,
                piece,
            )
    done = assembler.complete()
    assert [(c.name, json.loads(c.args_json)) for c in done] == [
        (name, json.loads(args)) for _, name, args in calls
    ]
    if with_id:
        assert [c.id for c in done] == [call_id for call_id, _, _ in calls]
    else:
        assert len({c.id for c in done}) == len(calls)


def test_index_reused_with_a_new_id_is_a_new_call() -> None:
    assembler = ToolCallAssembler()
    assembler.feed(0, "a", "ls", '{"p":1}')
    assembler.feed(0, "b", "pwd", "{}")
    assert [(c.id, c.name) for c in assembler.complete()] == [("a", "ls"), ("b", "pwd")]


def test_whole_calls_in_single_chunks_without_ids() -> None:
    assembler = ToolCallAssembler()
    assembler.feed(None, None, "ls", '{"command":"ls"}')
    assembler.feed(None, None, "pwd", '{"command":"pwd"}')
    assert [c.args_json for c in assembler.complete()] == ['{"command":"ls"}', '{"command":"pwd"}']
