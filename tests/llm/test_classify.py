"""Error classification (engine-behaviour §6): every rule of §6.2 as a table over error text,
then the fakes' faults through our adapters over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from chatd.llm.errors import (
    StartupTimeout,
    StreamClosedEarly,
    classify,
    extract_status,
    missing_key_error,
    provider_disabled_error,
    provider_hint,
    retry_message,
    startup_timeout_error,
    with_provider,
)
from chatd.llm.types import ProviderError
from chatd.sdk.chats import ChatErrorKind as K
from chatd.testing import FakeProvider
from tests.llm.conftest import MakeClient
from tests.llm.parts import collect, hello

# (rule, error text, kind, retryable)
TEXT_RULES = [
    ("0a", "chat interrupted by the user (status 500)", K.generic, False),
    ("0a", "request interrupted: overloaded", K.generic, False),
    ("0b", "internal state mismatch: previous response item missing", K.generic, False),
    ("0c", "anthropic stream closed before message_stop", K.timeout, True),
    ("0c", "openai responses stream closed before terminal event", K.timeout, True),
    ("1", "status code: 529", K.overloaded, True),
    ("1", "the server is Overloaded, try later (status 400)", K.overloaded, True),
    (
        "2",
        "You exceeded your current quota, please check your plan and billing details",
        K.usage_limit,
        False,
    ),
    ("2", "status 402: payment required", K.usage_limit, False),
    ("2", "status 429: insufficient_quota", K.usage_limit, False),
    ("3", "http 401 from upstream", K.auth, False),
    ("3", "Invalid API key provided", K.auth, False),
    ("3", "status=401 quota details", K.usage_limit, False),  # rule 2 comes first
    ("4", "status 403", K.auth, False),
    ("4", "Forbidden: organisation policy", K.auth, False),
    ("4", "forbidden: model not found for this key", K.config, False),  # config signal
    ("5", "status 429", K.rate_limit, True),
    (
        "5",
        "status 429: you exceeded your quota",
        K.rate_limit,
        True,
    ),  # quota at 429 is a rate limit
    ("5", "Too Many Requests", K.rate_limit, True),
    ("5", "rate_limit_exceeded: maximum context length is 8192", K.config, False),
    ("6", "gateway error code provider_disabled", K.provider_disabled, False),
    ("7", "read: connection reset by peer", K.timeout, True),
    ("7", "status 503 service unavailable", K.timeout, True),
    ("7", "http 502 bad gateway", K.timeout, True),
    ("7", "status: 504", K.timeout, True),
    ("7", "status code: 408", K.timeout, True),
    ("7", "stream error: stream ID 3; INTERNAL_ERROR; received from peer", K.timeout, True),
    ("7", "unexpected EOF", K.timeout, True),
    ("7", "context deadline exceeded", K.timeout, False),
    ("7", "request timed out: context length exceeded", K.config, False),  # config signal
    ("8", "model not found: gpt-9", K.config, False),
    ("8", "This model's maximum context length is 128000 tokens", K.config, False),
    ("8", "malformed configuration", K.config, False),
    ("9", "status 500", K.generic, True),
    ("9", "Internal Server Error", K.generic, True),
    ("10", "context canceled", K.generic, False),
    ("11", "something odd happened", K.generic, False),
]


@pytest.mark.parametrize(("rule", "text", "kind", "retryable"), TEXT_RULES)
def test_rule_table(rule: str, text: str, kind: K, retryable: bool) -> None:
    err = classify(RuntimeError(text), None)
    assert (err.kind, err.retryable) == (kind, retryable), rule


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("POST /v1: status code: 418", 418),
        ("status=404 not found", 404),
        ("HTTP 422 Unprocessable", 422),
        ("dial tcp 127.0.0.1:503: refused", None),
        ("stream error: stream ID 429; CANCEL", None),
        ("failed with 502 from proxy", 502),
        ("context length 5000 exceeded", None),
    ],
)
def test_status_extraction(text: str, status: int | None) -> None:
    assert extract_status(text) == status


@pytest.mark.parametrize(
    ("text", "provider"),
    [
        ("openai-compat endpoint down", "openai-compat"),
        ("azure openai deployment missing", "azure"),
        ("openrouter: no endpoints", "openrouter"),
        ("bedrock throttling", "bedrock"),
        ("vercel ai gateway", "vercel"),
        ("claude is busy", "anthropic"),
        ("vertex quota", "google"),
        ("api.openai.com unreachable", "openai"),
        ("nothing here", None),
    ],
)
def test_provider_hint(text: str, provider: str | None) -> None:
    assert provider_hint(text) == provider


def test_messages_name_the_provider() -> None:
    err = classify(RuntimeError("status 529"), None)
    assert err.provider is None and "the ai provider" in err.message.lower()
    named = with_provider(err, "anthropic")
    assert named.provider == "anthropic" and "Anthropic" in named.message
    assert "Anthropic" in retry_message(named)
    assert "OpenAI Compatible" in classify(RuntimeError("status 401"), "openai-compat").message


def test_detail_is_truncated_to_500_runes() -> None:
    err = classify(RuntimeError("é" * 800), None)
    assert err.detail == "é" * 500 + "…"


def test_timeouts_cancellation_and_types() -> None:
    deadline = classify(TimeoutError(), "openai")
    assert (deadline.kind, deadline.retryable) == (K.timeout, False)
    assert deadline.message == "The request to the model took too long and was stopped."
    cancelled = classify(asyncio.CancelledError(), "openai")
    assert (cancelled.kind, cancelled.retryable) == (K.generic, False)
    assert "cancelled" in cancelled.message
    early = classify(StreamClosedEarly("gone"), "anthropic")
    assert (early.kind, early.retryable) == (K.timeout, True)
    startup = classify(StartupTimeout(), "anthropic")
    assert (startup.kind, startup.retryable) == (K.startup_timeout, True)


def test_errors_made_outside_the_classifier() -> None:
    missing = missing_key_error("openai")
    assert (missing.kind, missing.retryable) == (K.missing_key, False)
    assert "again" in missing.message
    disabled = provider_disabled_error("anthropic")
    assert (disabled.kind, disabled.retryable) == (K.provider_disabled, False)
    assert "Anthropic" in disabled.message
    startup = startup_timeout_error("openai")
    assert (startup.kind, startup.retryable, startup.provider) == (
        K.startup_timeout,
        True,
        "openai",
    )


# ---- the fakes' faults through the adapters --------------------------------------------------

FAULTS = [
    ("openai", {"error": {"status": 401}}, K.auth, False, 401),
    ("anthropic", {"error": {"status": 401}}, K.auth, False, 401),
    ("openai", {"error": {"status": 403}}, K.auth, False, 403),
    ("anthropic", {"error": {"status": 529}}, K.overloaded, True, 529),
    (
        "anthropic",
        {"stream_error": {"after": 1, "type": "overloaded_error"}},
        K.overloaded,
        True,
        529,
    ),
    (
        "openai",
        {
            "stream_error": {
                "after": 1,
                "type": "server_error",
                "message": "Internal server error",
            }
        },
        K.generic,
        True,
        None,
    ),
    ("openai", {"error": {"status": 500}}, K.generic, True, 500),
    ("anthropic", {"error": {"status": 500}}, K.generic, True, 500),
    ("openai", {"error": {"status": 503}}, K.timeout, True, 503),
    ("anthropic", {"error": {"status": 503}}, K.timeout, True, 503),
    ("openai", {"text": "partial answer", "truncate_after": 1}, K.timeout, True, None),
    ("anthropic", {"text": "partial answer", "truncate_after": 1}, K.timeout, True, None),
    (
        "openai",
        {
            "error": {
                "status": 429,
                "code": "insufficient_quota",
                "message": "You exceeded your current quota",
            }
        },
        K.usage_limit,
        False,
        429,
    ),
    ("anthropic", {"error": {"status": 402}}, K.usage_limit, False, 402),
    ("openai", {"error": {"status": 404}}, K.config, False, 404),
    (
        "anthropic",
        {
            "error": {
                "status": 400,
                "message": "prompt is too long: maximum context length exceeded",
            }
        },
        K.config,
        False,
        400,
    ),
    (
        "openai-compat",
        {"error": {"status": 400, "code": "provider_disabled", "message": "disabled"}},
        K.provider_disabled,
        False,
        400,
    ),
]


# Every fault through a turn's streamed call; the HTTP errors also through the read call that
# titles and summaries make (no stream there to break).
CALLS = [("stream", *fault) for fault in FAULTS] + [
    ("generate", *fault) for fault in FAULTS if "error" in fault[1]
]


@pytest.mark.anyio
@pytest.mark.parametrize(("call", "provider", "entry", "kind", "retryable", "status"), CALLS)
async def test_fault_classification(
    fake: FakeProvider,
    make_client: MakeClient,
    call: str,
    provider: str,
    entry: dict[str, object],
    kind: K,
    retryable: bool,
    status: int | None,
) -> None:
    fake.add([entry])
    client = make_client(provider)
    with pytest.raises(ProviderError) as caught:
        if call == "stream":
            await collect(client)
        else:
            await client.generate(hello())
    err = caught.value.error
    assert (err.kind, err.retryable, err.status_code) == (kind, retryable, status)
    assert err.provider == provider and err.detail


@pytest.mark.anyio
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_rate_limit_with_retry_after(
    fake: FakeProvider, make_client: MakeClient, provider: str
) -> None:
    fake.add([{"error": {"status": 429, "retry_after": 2}}])
    with pytest.raises(ProviderError) as caught:
        await collect(make_client(provider))
    err = caught.value.error
    assert (err.kind, err.retryable, err.status_code, err.retry_after) == (
        K.rate_limit,
        True,
        429,
        2.0,
    )


@pytest.mark.anyio
async def test_connection_refused_is_a_retryable_timeout() -> None:
    from chatd.llm.factory import create_client
    from tests.e2e.server import free_port

    client = create_client(
        provider="openai-compat",
        model="m",
        api_key="",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await collect(client)
    finally:
        await client.aclose()  # type: ignore[attr-defined]
    assert (caught.value.error.kind, caught.value.error.retryable) == (K.timeout, True)


def test_an_already_classified_error_keeps_its_classification() -> None:
    inner = classify(RuntimeError("status 529"), None)
    again = classify(ProviderError(inner), "anthropic")
    assert (again.kind, again.provider) == (K.overloaded, "anthropic")
