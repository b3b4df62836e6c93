"""Every script feature through our adapters, over real loopback HTTP, as normalised parts."""

from __future__ import annotations

import json

import anyio
import pytest

from chatd.llm.types import ProviderError, ToolSpec, Usage
from chatd.testing import FakeProvider, stamps
from tests.llm.conftest import MakeClient
from tests.llm.parts import collect, hello

pytestmark = pytest.mark.anyio

PROVIDERS = ["openai", "openai-compat", "anthropic"]


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_text_streams_in_chunks(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"text": "Hello there, general Kenobi.", "chunk_chars": 5}])
    out = await collect(make_client(provider))
    assert out.text == "Hello there, general Kenobi."
    assert len([p for p in out.parts if type(p).__name__ == "TextDelta"]) == 6
    assert out.finish.finish_reason == "stop"
    assert out.finish.provider_response_id
    assert out.finish.usage == Usage(input_tokens=10, output_tokens=5, total_tokens=15)


async def test_reasoning_with_signature(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"reasoning": "Let me think about it.", "signature": "sig-123", "text": "Yes."}])
    out = await collect(make_client(provider))
    assert out.reasoning == "Let me think about it."
    assert out.text == "Yes."
    # Chat completions has no reasoning signatures.
    assert out.signatures == (["sig-123"] if provider == "anthropic" else [])


async def test_parallel_tool_calls(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    calls = [
        {"id": "call_a", "name": "execute", "args": {"command": "ls -la"}, "chunks": 4},
        {"id": "call_b", "name": "execute", "args": {"command": "pwd"}, "chunks": 2},
    ]
    fake.add([{"text": "Running.", "tool_calls": calls}])
    out = await collect(make_client(provider))
    assert [(c.id, c.name, json.loads(c.args_json)) for c in out.calls] == [
        ("call_a", "execute", {"command": "ls -la"}),
        ("call_b", "execute", {"command": "pwd"}),
    ]
    by_id: dict[str, str] = {}
    for delta in out.call_deltas:
        by_id[delta.id] = by_id.get(delta.id, "") + delta.args_delta
    assert {k: json.loads(v) for k, v in by_id.items()} == {
        "call_a": {"command": "ls -la"},
        "call_b": {"command": "pwd"},
    }
    assert out.finish.finish_reason == "tool-calls"


@pytest.mark.parametrize("omit_id", [False, True])
async def test_tool_calls_without_index(
    fake: FakeProvider, make_client: MakeClient, omit_id: bool
) -> None:
    calls = [
        {"id": "call_a", "name": "execute", "args": {"command": "ls"}},
        {"id": "call_b", "name": "execute", "args": {"command": "pwd"}},
    ]
    fake.add([{"tool_calls": calls, "omit_index": True, "omit_id": omit_id}])
    out = await collect(make_client("openai-compat"))
    assert [json.loads(c.args_json) for c in out.calls] == [{"command": "ls"}, {"command": "pwd"}]
    ids = [c.id for c in out.calls]
    assert len(set(ids)) == 2
    if not omit_id:
        assert ids == ["call_a", "call_b"]


async def test_invalid_tool_args_become_empty_object(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"tool_calls": [{"id": "c.1/x", "name": "read", "args_json": "{not json"}]}])
    out = await collect(make_client(provider))
    assert [(c.id, c.args_json) for c in out.calls] == [("c_1_x", "{}")]
    # What was wrong stays known, for the tools that answer bad arguments with an error.
    assert out.calls[0].args_error is not None and "Expecting" in out.calls[0].args_error


@pytest.mark.parametrize(
    ("script", "expected"),
    [("length", "length"), ("content-filter", "content-filter"), ("stop", "stop")],
)
async def test_finish_reasons(
    fake: FakeProvider, make_client: MakeClient, provider: str, script: str, expected: str
) -> None:
    fake.add([{"text": "cut", "finish_reason": script}])
    out = await collect(make_client(provider))
    assert out.finish.finish_reason == expected


async def test_usage_with_cache_and_reasoning(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    usage = {
        "input_tokens": 100,
        "output_tokens": 40,
        "cache_read_tokens": 30,
        "cache_creation_tokens": 20,
        "reasoning_tokens": 12,
    }
    fake.add([{"text": "ok", "usage": usage}])
    got = (await collect(make_client(provider))).finish.usage
    assert (got.input_tokens, got.output_tokens, got.cache_read_tokens) == (100, 40, 30)
    assert got.reasoning_tokens == 12
    if provider == "anthropic":
        assert got.cache_creation_tokens == 20
        assert got.total_tokens == 190
    else:  # chat completions reports no cache writes
        assert got.total_tokens == 170


async def test_stamped_deltas(fake: FakeProvider, make_client: MakeClient, provider: str) -> None:
    fake.add(
        [{"text": "abcdefgh", "chunk_chars": 2, "stamp_deltas": True, "tokens_per_second": 1000}]
    )
    out = await collect(make_client(provider))
    found = stamps(out.text)
    assert len(found) == 4 and found == sorted(found)


async def test_default_reply_when_script_is_used_up(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    from chatd.testing import DEFAULT_TEXT

    out = await collect(make_client(provider))
    assert out.text == DEFAULT_TEXT


async def test_generate_sends_no_tools(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"match": {"stream": False}, "text": "A short title"}])
    tools = [ToolSpec("execute", "Run a command", {"type": "object", "properties": {}})]
    generated = await make_client(provider).generate(hello(tools=tools, allow_tools=False))
    assert generated.text == "A short title"
    assert generated.usage.output_tokens == 5
    [sent] = fake.requests
    assert not sent.stream and "tools" not in sent.body


async def test_tools_are_offered_when_allowed(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    schema = {"type": "object", "properties": {"command": {"type": "string"}}}
    await collect(
        make_client(provider), hello(tools=[ToolSpec("execute", "Run a command", schema)])
    )
    [sent] = fake.requests
    assert sent.stream
    tool = sent.body["tools"][0]
    if provider == "anthropic":
        assert tool == {"name": "execute", "description": "Run a command", "input_schema": schema}
    else:
        assert tool["function"] == {
            "name": "execute",
            "description": "Run a command",
            "parameters": schema,
        }
        assert sent.body["stream_options"] == {"include_usage": True}


async def test_match_keeps_stream_entries_for_streams(
    fake: FakeProvider, make_client: MakeClient
) -> None:
    fake.add(
        [{"match": {"stream": True}, "text": "turn"}, {"match": {"stream": False}, "text": "title"}]
    )
    client = make_client("openai")
    assert (await client.generate(hello())).text == "title"
    assert (await collect(client)).text == "turn"


async def test_stalled_first_byte_until_the_client_gives_up(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"stall_after": 0}])
    client = make_client(provider)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:

            async def consume() -> None:
                async for _ in client.stream(hello()):
                    pytest.fail("a stalled reply sends nothing")

            group.start_soon(consume)
            while not fake.requests:  # noqa: ASYNC110 (bounded by fail_after)
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()  # the client gives up (the engine's startup guard)


async def test_stall_mid_stream_then_release_is_truncation(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"text": "abcdef", "chunk_chars": 2, "stall_after": 2}])
    received: list[str] = []
    with anyio.fail_after(10), pytest.raises(ProviderError) as caught:
        async for part in make_client(provider).stream(hello()):
            received.append(getattr(part, "text", ""))
            if len(received) == 2:
                fake.release()
    assert received == ["ab", "cd"]
    assert caught.value.error.kind == "timeout" and caught.value.error.retryable
