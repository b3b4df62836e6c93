"""The fake providers against the official SDKs directly: the wire format is the real one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import anyio
import httpx2
import openai
import pytest

from chatd.testing import DEFAULT_TEXT, FakeProvider, serve_fake, serve_fake_in_thread
from tests.e2e.server import free_port

pytestmark = pytest.mark.anyio

TOOL = {"name": "execute", "args": {"command": "ls"}, "id": "toolu_1"}


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeProvider, str, httpx2.AsyncClient]]:
    fake = FakeProvider()
    async with serve_fake(fake) as url, httpx2.AsyncClient() as http:
        yield fake, url, http


async def test_openai_sdk_streams_text_reasoning_tools_usage(
    served: tuple[FakeProvider, str, httpx2.AsyncClient],
) -> None:
    fake, url, http = served
    fake.add(
        [
            {
                "reasoning": "hmm",
                "text": "Hi there",
                "tool_calls": [TOOL],
                "usage": {"input_tokens": 7},
            }
        ]
    )
    sdk = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", http_client=http, max_retries=0)
    text, reasoning, args, finish, usage = "", "", "", None, None
    with anyio.fail_after(10):
        stream = await sdk.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                reasoning += (choice.delta.model_extra or {}).get("reasoning_content", "")
                for call in choice.delta.tool_calls or []:
                    args += call.function.arguments or "" if call.function else ""
                finish = choice.finish_reason or finish
    assert (text, reasoning, json.loads(args), finish) == (
        "Hi there",
        "hmm",
        {"command": "ls"},
        "tool_calls",
    )
    assert usage is not None and usage.prompt_tokens == 7
    assert fake.requests[0].body["messages"] == [{"role": "user", "content": "hi"}]


async def test_openai_sdk_non_streaming(
    served: tuple[FakeProvider, str, httpx2.AsyncClient],
) -> None:
    fake, url, http = served
    sdk = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", http_client=http, max_retries=0)
    completion = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content == DEFAULT_TEXT
    assert completion.usage is not None and completion.usage.total_tokens == 15


async def test_openai_sdk_sees_429_with_retry_after(
    served: tuple[FakeProvider, str, httpx2.AsyncClient],
) -> None:
    fake, url, http = served
    fake.add([{"error": {"status": 429, "retry_after": 3}}])
    sdk = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", http_client=http, max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="m", messages=[], stream=True)
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded"


async def test_anthropic_sdk_stream_helper(
    served: tuple[FakeProvider, str, httpx2.AsyncClient],
) -> None:
    fake, url, http = served
    fake.add([{"reasoning": "think", "signature": "sig", "text": "Hello", "tool_calls": [TOOL]}])
    sdk = anthropic.AsyncAnthropic(base_url=url, api_key="k", http_client=http, max_retries=0)
    with anyio.fail_after(10):
        async with sdk.messages.stream(
            model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text", "tool_use"]
    thinking, text, tool = message.content
    assert thinking.type == "thinking" and (thinking.thinking, thinking.signature) == (
        "think",
        "sig",
    )
    assert text.type == "text" and text.text == "Hello"
    assert tool.type == "tool_use" and (tool.id, tool.input) == ("toolu_1", {"command": "ls"})
    assert message.stop_reason == "tool_use"
    headers = fake.requests[0].headers
    assert headers.get("x-api-key") == "k" or headers.get("authorization") == "Bearer k", headers


async def test_anthropic_sdk_in_stream_overload_is_status_200(
    served: tuple[FakeProvider, str, httpx2.AsyncClient],
) -> None:
    fake, url, http = served
    fake.add([{"text": "abc", "stream_error": {"after": 1}}])
    sdk = anthropic.AsyncAnthropic(base_url=url, api_key="k", http_client=http, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        stream = await sdk.messages.create(model="m", max_tokens=10, messages=[], stream=True)
        async for _ in stream:
            pass
    assert caught.value.status_code == 200 and caught.value.type == "overloaded_error"
    assert not isinstance(caught.value, anthropic.OverloadedError)


async def test_anthropic_sdk_529(served: tuple[FakeProvider, str, httpx2.AsyncClient]) -> None:
    fake, url, http = served
    fake.add([{"error": {"status": 529}}])
    sdk = anthropic.AsyncAnthropic(base_url=url, api_key="k", http_client=http, max_retries=0)
    with pytest.raises(anthropic.OverloadedError):
        await sdk.messages.create(model="m", max_tokens=10, messages=[])


async def test_control_endpoints(served: tuple[FakeProvider, str, httpx2.AsyncClient]) -> None:
    fake, url, http = served
    added = await http.post(url + "/fake/script", json=[{"text": "scripted"}])
    assert added.json() == {"remaining": 1}
    reply = await http.post(url + "/v1/chat/completions", json={"model": "m", "messages": []})
    assert reply.json()["choices"][0]["message"]["content"] == "scripted"
    recorded = (await http.get(url + "/fake/requests")).json()
    assert recorded == [{"endpoint": "openai", "body": {"model": "m", "messages": []}}]
    await http.post(url + "/fake/script", json=[{"text": "left over"}, {"text": "and this"}])
    cleared = await http.delete(url + "/fake/script")
    assert cleared.json() == {"dropped": 2} and fake.remaining == 0
    reply = await http.post(url + "/v1/chat/completions", json={"model": "m", "messages": []})
    assert reply.json()["choices"][0]["message"]["content"] == DEFAULT_TEXT


async def test_a_reply_waits_behind_its_gate(
    served: tuple[FakeProvider, str, httpx2.AsyncClient],
) -> None:
    fake, url, http = served
    fake.add([{"text": "after the gate", "wait_for": "go"}, {"text": "open already"}])
    fake.add([{"text": "gated too", "wait_for": "go"}])
    answers: list[str] = []

    async def ask() -> None:
        r = await http.post(url + "/v1/chat/completions", json={"messages": []})
        answers.append(r.json()["choices"][0]["message"]["content"])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(ask)
            for _ in range(1000):  # polled: the request is in, then held
                if fake.requests:
                    break
                await anyio.sleep(0.01)
            await ask()  # the next entry is not gated: it passes the held one
            assert answers == ["open already"]
            opened = await http.post(url + "/fake/gates/go")
            assert opened.status_code == 204
        await ask()  # an open gate stays open
    assert answers == ["open already", "after the gate", "gated too"]


def test_thread_runner_serves_sync_callers() -> None:
    fake = FakeProvider([{"text": "from a thread"}])
    with serve_fake_in_thread(fake) as url:
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
        with sdk:
            completion = sdk.chat.completions.create(model="m", messages=[])
    assert completion.choices[0].message.content == "from a thread"


def test_thread_runner_releases_a_stalled_reply_on_exit() -> None:
    fake = FakeProvider([{"stall_after": 0}])
    with serve_fake_in_thread(fake) as url, httpx2.Client() as http:
        with pytest.raises(httpx2.ReadTimeout):
            http.post(url + "/v1/messages", json={"stream": True}, timeout=0.2)


def test_cli_dev_fake_provider(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from the CLI"}]))
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatd.cli.main",
            "dev",
            "fake-provider",
            "--port",
            str(port),
            "--script",
            str(script),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        with httpx2.Client() as http:
            for _ in range(500):
                try:
                    reply = http.post(
                        f"http://127.0.0.1:{port}/v1/chat/completions", json={"messages": []}
                    )
                    break
                except httpx2.ConnectError:
                    time.sleep(0.02)  # the process is still binding its port
            assert reply.json()["choices"][0]["message"]["content"] == "from the CLI"
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


async def test_with_api_keys_a_call_without_one_of_them_gets_the_providers_401() -> None:
    fake = FakeProvider(api_keys=["sk-right", "sk-also"])
    async with serve_fake(fake) as url, httpx2.AsyncClient() as http:
        messages = [{"role": "user", "content": "hi"}]
        for key in ("sk-wrong", "sk-right"):
            sdk = openai.AsyncOpenAI(
                base_url=url + "/v1", api_key=key, http_client=http, max_retries=0
            )
            if key == "sk-wrong":
                with pytest.raises(openai.AuthenticationError) as raised:
                    await sdk.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
                assert raised.value.code == "invalid_api_key"
            else:
                done = await sdk.chat.completions.create(model="m", messages=messages)  # type: ignore[arg-type]
                assert done.choices[0].message.content == DEFAULT_TEXT
        for key in ("sk-wrong", "sk-also"):
            claude = anthropic.AsyncAnthropic(
                base_url=url, api_key=key, http_client=http, max_retries=0
            )
            call = claude.messages.create(model="c", max_tokens=10, messages=messages)  # type: ignore[arg-type]
            if key == "sk-wrong":
                with pytest.raises(anthropic.AuthenticationError):
                    await call
            else:
                assert (await call).content[0].text == DEFAULT_TEXT  # type: ignore[union-attr]
        assert len(fake.requests) == 4  # every call is recorded, refused or not
