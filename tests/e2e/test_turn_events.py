"""Event sequences of real turns (engine-behaviour §10.4 A–D, F, G) over real WebSockets.

One fake provider and one ``chatd server`` per database serve the whole module; each test
drives its own chats, appending the fake replies it needs just before the step that uses them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import events as ev
from tests.e2e.turn_harness import (
    ENDPOINTS,
    PROVIDERS,
    Deployment,
    Fake,
    deployment,
    fake_provider,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    with fake_provider(tmp_path_factory.mktemp("fake")) as running:
        yield running


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def dep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake: Fake
) -> Iterator[Deployment]:
    with deployment(tmp_path_factory.mktemp("server"), fake, request.param) as running:
        yield running


@pytest.fixture(autouse=True)
def script_used_up(fake: Fake) -> Iterator[None]:
    yield
    assert fake.remaining() == 0, "a test left fake replies unused"


def _send_and_follow(dep: Deployment, chat_id: str, text: str, turns: int = 1) -> list[ev.Event]:
    """Send ``text`` to the idle chat; the events until ``turns`` turns have settled."""
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        dep.api.send(chat_id, text)
        return stream.until(ev.settles(turns))


def _last_streamed_endpoint(fake: Fake) -> str:
    return str([r for r in fake.requests() if r["body"].get("stream")][-1]["endpoint"])


# ---- A: a text turn, B: tool calls ---------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_turn(dep: Deployment, provider: str) -> None:
    chat_id = dep.idle_chat(provider)
    match = {"endpoint": ENDPOINTS[provider]}
    dep.fake.script({"reasoning": "Thinking it over.", "text": "A text answer.", "match": match})

    events = _send_and_follow(dep, chat_id, "question")

    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:reasoning) P(assistant:text) "
        "M(assistant) S(waiting)"
    )
    assert ev.text_of(events) == "A text answer."
    assert _last_streamed_endpoint(dep.fake) == ENDPOINTS[provider]
    (assistant,) = [e["message"] for e in events if e["type"] == "message"][1:]
    assert [p["type"] for p in assistant["content"]] == ["reasoning", "text"]
    assert assistant["usage"]["output_tokens"] == 5
    assert dep.api.chat(chat_id).get("last_error") is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_turn_has_two_steps(dep: Deployment, provider: str) -> None:
    chat_id = dep.idle_chat(provider)
    match = {"endpoint": ENDPOINTS[provider]}
    call = {"name": "echo", "args": {"text": "ping"}, "id": "call_b1"}
    dep.fake.script(
        {"text": "Let me echo.", "tool_calls": [call], "match": match},
        {"text": "Echoed.", "match": match},
    )

    events = _send_and_follow(dep, chat_id, "use a tool")

    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:text) P(assistant:tool-call Δ) "
        "P(assistant:tool-call call_b1) P(tool:tool-result call_b1) M(assistant) M(tool) "
        "P(assistant:text) M(assistant) S(waiting)"
    )
    (result,) = ev.parts(events, "tool-result")
    assert result["tool_name"] == "echo" and result["result"] == {"output": "ping"}
    assert "is_error" not in result or not result["is_error"]
    # The second step's request carried the call and its result back to the model.
    streamed = [r["body"] for r in dep.fake.requests() if r["body"].get("stream")]
    assert "ping" in str(streamed[-1]["messages"])


def test_parallel_tool_calls_publish_results_in_call_order(dep: Deployment) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script(
        {
            "tool_calls": [
                {"name": "echo", "args": {"text": "first"}, "id": "call_p1"},
                {"name": "echo", "args": {"text": "second"}, "id": "call_p2"},
            ]
        },
        {"text": "Both echoed."},
    )

    events = _send_and_follow(dep, chat_id, "two tools")

    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:tool-call Δ) "
        "P(assistant:tool-call call_p1) P(assistant:tool-call call_p2) "
        "P(tool:tool-result call_p1) P(tool:tool-result call_p2) "
        "M(assistant) M(tool) M(tool) P(assistant:text) M(assistant) S(waiting)"
    )
    tool_rows = [e["message"] for e in events if e["type"] == "message"][2:4]
    assert [m["content"][0]["result"] for m in tool_rows] == [
        {"output": "first"},
        {"output": "second"},
    ]


# ---- D: retries and errors -------------------------------------------------------------------


def test_retry_then_success(dep: Deployment) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script({"error": {"status": 429, "retry_after": 0.1}}, {"text": "Recovered."})

    events = _send_and_follow(dep, chat_id, "try")

    assert ev.render(events) == (
        "M(user) S(pending) S(running) R(1:rate_limit) P(assistant:text) M(assistant) S(waiting)"
    )
    (retry,) = [e["retry"] for e in events if e["type"] == "retry"]
    assert retry["delay_ms"] == 100  # the provider's retry-after beats the 50 ms policy delay
    assert (retry["status_code"], retry["provider"]) == (429, "openai-compat")
    assert dep.api.chat(chat_id).get("last_error") is None


def _openai_error(message: str, kind: str, code: str) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"status": 401}, "auth"),
        (
            {
                "status": 429,
                "body": _openai_error(
                    "You exceeded your current quota.", "insufficient_quota", "insufficient_quota"
                ),
            },
            "usage_limit",
        ),
        (
            {
                "status": 404,
                "body": _openai_error(
                    "The model `fake-model` does not exist.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            },
            "config",
        ),
    ],
)
def test_non_retryable_error(dep: Deployment, error: dict[str, object], kind: str) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script({"error": error})

    events = _send_and_follow(dep, chat_id, "fail")

    assert ev.render(events) == f"M(user) S(pending) S(running) E({kind}) S(error)"
    (published,) = [e["error"] for e in events if e["type"] == "error"]
    assert published["retryable"] is False
    assert published["status_code"] == error["status"]
    assert published["provider"] == "openai-compat"
    assert dep.api.chat(chat_id)["last_error"] == published


# ---- C: interrupt; F: busy sends; G: edit ------------------------------------------------------

# 24 deltas at 16 per second: still streaming (1.5 s) when the test acts on its first delta.
SLOW_TEXT = "word " * 24
SLOW = {"text": SLOW_TEXT, "chunk_chars": 5, "tokens_per_second": 16}


def test_interrupt_keeps_the_partial_answer(dep: Deployment) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script(SLOW, {"text": "After."})
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        dep.api.send(chat_id, "long answer")
        stream.until(ev.has("P(assistant:text)"))
        assert dep.api.call("POST", f"/{chat_id}/interrupt")["status"] == "waiting"
        stream.until(ev.has("M(assistant)"))
        # The next message starts a fresh turn once the interrupted one has finished.
        dep.api.send(chat_id, "again")
        events = stream.until(ev.settles(2))

    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:text) S(waiting) M(assistant) "
        "M(user) S(pending) S(running) P(assistant:text) M(assistant) S(waiting)"
    )
    partial = [e["message"] for e in events if e["type"] == "message"][1]
    text = partial["content"][0]["text"]
    assert text and SLOW_TEXT.startswith(text) and text != SLOW_TEXT
    assert not (partial.get("usage") or {}).get("output_tokens")  # no usage for a partial
    history = [(m["role"], m["content"][0]["text"]) for m in dep.api.messages(chat_id)]
    assert history[2:] == [
        ("user", "long answer"),
        ("assistant", text),
        ("user", "again"),
        ("assistant", "After."),
    ]


def test_send_while_running_is_queued_then_promoted(dep: Deployment) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script(SLOW, {"text": "Second."})
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        dep.api.send(chat_id, "one")
        stream.until(ev.has("P(assistant:text)"))
        assert dep.api.send(chat_id, "two")["queued"] is True
        events = stream.until(ev.settles(2, ("waiting",)))

    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:text) Q[two] P(assistant:text) M(assistant) "
        "M(user) Q[] S(pending) S(running) P(assistant:text) M(assistant) S(waiting)"
    )
    assert ev.text_of(events) == SLOW_TEXT + "Second."


def test_busy_behavior_interrupt(dep: Deployment) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script(SLOW, {"text": "Second."})
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        dep.api.send(chat_id, "one")
        stream.until(ev.has("P(assistant:text)"))
        assert dep.api.send(chat_id, "now", busy_behavior="interrupt")["queued"] is True
        events = stream.until(ev.settles(2, ("waiting",)))

    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:text) Q[now] S(waiting) M(assistant) "
        "M(user) Q[] S(pending) S(running) P(assistant:text) M(assistant) S(waiting)"
    )
    roles = [(m["role"], m["content"][0]["text"]) for m in dep.api.messages(chat_id)][2:]
    assert [r for r, _ in roles] == ["user", "assistant", "user", "assistant"]
    assert roles[2:] == [("user", "now"), ("assistant", "Second.")]


def test_edit_during_a_turn_restarts_it(dep: Deployment) -> None:
    chat_id = dep.idle_chat()
    dep.fake.script(SLOW, {"text": "Edited answer."})
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        sent = dep.api.send(chat_id, "original")
        stream.until(ev.has("P(assistant:text)"))
        dep.api.call(
            "PATCH",
            f"/{chat_id}/messages/{sent['message']['id']}",
            json={"content": [{"type": "text", "text": "edited"}]},
        )
        events = stream.until(ev.settles(2, ("waiting",)))

    # The edit re-sends the visible history (the replacement last), clears the queue and
    # restarts; the interrupted turn's partial output is refused, not stored.
    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:text) M(user) M(assistant) M(user) Q[] "
        "S(pending) S(running) P(assistant:text) M(assistant) S(waiting)"
    )
    refreshed = [e["message"]["content"][0]["text"] for e in events if e["type"] == "message"]
    assert refreshed[1:4] == ["hello", "Hello.", "edited"]
    history = [(m["role"], m["content"][0]["text"]) for m in dep.api.messages(chat_id)]
    assert history == [
        ("user", "hello"),
        ("assistant", "Hello."),
        ("user", "edited"),
        ("assistant", "Edited answer."),
    ]
