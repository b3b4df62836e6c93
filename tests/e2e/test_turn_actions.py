"""Client-side tools (engine-behaviour §10.4 E, §11) and the watch socket, against real processes.

A dynamic tool declared at chat creation makes the turn stop in ``requires_action``; the
client answers with ``POST /tool-results`` and the next turn completes. A second server with a
short stale threshold shows the timeout: synthetic results and ``error``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chatd.testing.script import DEFAULT_TEXT
from tests.e2e import events as ev
from tests.e2e.turn_harness import Deployment, Fake, deployment, fake_provider

pytestmark = pytest.mark.slow
DYNAMIC_TOOLS = [
    {
        "name": "my_tool",
        "description": "Runs on the client.",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
]


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


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stale_dep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake: Fake
) -> Iterator[Deployment]:
    """A server that gives up on an unanswered client tool after one second."""
    with deployment(
        tmp_path_factory.mktemp("stale"),
        fake,
        request.param,
        CHATD_HEARTBEAT_INTERVAL="0.1",
        CHATD_STALE_AFTER="1",
        CHATD_STALE_RECOVERY_INTERVAL="0.2",
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def script_used_up(fake: Fake) -> Iterator[None]:
    yield
    assert fake.remaining() == 0, "a test left fake replies unused"


def _dynamic_call(call_id: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "my_tool", "args": {"q": "x"}, "id": call_id}]}


def _watch_labels(events: list[ev.Event], chat_id: str) -> list[str]:
    """The chat's watch events, without summaries (they come whenever their model answers)."""
    return ev.labels(
        [e for e in events if e["chat"]["id"] == chat_id and e["kind"] != "summary_change"]
    )


def _wait_requires_action(dep: Deployment, chat_id: str, call_id: str) -> list[ev.Event]:
    dep.fake.script(_dynamic_call(call_id))
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        dep.api.send(chat_id, "use my tool")
        events = stream.until(ev.settles())
    assert ev.render(events) == (
        "M(user) S(pending) S(running) P(assistant:tool-call Δ) "
        f"P(assistant:tool-call {call_id}) M(assistant) S(requires_action) A(my_tool)"
    )
    return events


def test_requires_action_round_trip(dep: Deployment) -> None:
    chat_id = dep.idle_chat(unsafe_dynamic_tools=DYNAMIC_TOOLS)
    with ev.watch(dep.api.url, dep.api.token) as watch:
        events = _wait_requires_action(dep, chat_id, "call_e1")
        (action,) = [e["action_required"] for e in events if e["type"] == "action_required"]
        expected_calls = [{"tool_call_id": "call_e1", "tool_name": "my_tool", "args": '{"q":"x"}'}]
        assert action["tool_calls"] == expected_calls
        watched = watch.take(ev.watched("action_required", chat_id))
        assert _watch_labels(watched, chat_id) == [
            "W(status_change:pending)",
            "W(status_change:requires_action)",
            "W(action_required)",
        ]
        assert watched[-1]["tool_calls"] == expected_calls
        assert dep.api.chat(chat_id)["status"] == "requires_action"

        dep.fake.script({"text": "Thanks for the result."})
        with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
            dep.api.call(
                "POST",
                f"/{chat_id}/tool-results",
                expect=204,
                json={"results": [{"tool_call_id": "call_e1", "output": {"answer": 42}}]},
            )
            events = stream.until(ev.settles())
        # chatd publishes the submitted result and the pending status (the reference stays
        # silent until the next turn starts).
        assert ev.render(events) == (
            "M(tool) S(pending) S(running) P(assistant:text) M(assistant) S(waiting)"
        )
        result = events[0]["message"]["content"][0]
        assert (result["tool_call_id"], result["result"]) == ("call_e1", {"answer": 42})
        watched = watch.take(ev.watched("status_change", chat_id, "waiting"))
        assert _watch_labels(watched, chat_id) == [
            "W(status_change:pending)",
            "W(status_change:waiting)",
        ]
    streamed = [r["body"] for r in dep.fake.requests() if r["body"].get("stream")]
    assert "42" in str(streamed[-1]["messages"])  # the model saw the client's result


def test_unanswered_client_tool_times_out(stale_dep: Deployment) -> None:
    dep = stale_dep
    chat_id = dep.idle_chat(unsafe_dynamic_tools=DYNAMIC_TOOLS)
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        # The stream is opened before the turn, so the timeout's events reach it.
        dep.fake.script(_dynamic_call("call_t1"))
        dep.api.send(chat_id, "use my tool")
        stream.take(ev.settles(final=("requires_action",)))
        events = stream.until(lambda es: "error" in ev.statuses(es))

    assert ev.render(events) == "M(tool) S(error)"
    result = events[0]["message"]["content"][0]
    assert result["tool_call_id"] == "call_t1" and result["is_error"] is True
    assert "timed out" in str(result["result"])
    last_error = dep.api.wait_status(chat_id, "error")["last_error"]
    assert last_error["message"] == "Dynamic tool execution timed out"
    assert last_error["retryable"] is False


def test_watch_sees_the_first_turn_and_its_title(dep: Deployment) -> None:
    dep.fake.script({"text": "First answer."})
    with ev.watch(dep.api.url, dep.api.token) as watch:
        chat_id = dep.new_chat("name this chat")
        events = watch.until(
            lambda es: (
                ev.watched("status_change", chat_id, "waiting")(es)
                and ev.watched("title_change", chat_id)(es)
            )
        )

    labels = _watch_labels(events, chat_id)
    # The title is generated beside the turn, so it may land before or after the turn ends.
    assert [x for x in labels if x != "W(title_change)"] == [
        "W(created)",
        "W(status_change:waiting)",
    ]
    assert labels.count("W(title_change)") == 1
    (titled,) = [e["chat"] for e in events if e["kind"] == "title_change"]
    assert titled["title"] == DEFAULT_TEXT
    assert events[0]["chat"]["title"] == "name this chat"  # the fallback until then
    assert dep.api.chat(chat_id)["title"] == titled["title"]
