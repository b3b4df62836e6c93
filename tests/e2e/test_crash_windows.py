"""kill -9 a real ``chatd server`` inside the two windows where a turn's work is committed but
its finish is not, then check what the next server makes of it (§4.5).

1. An interrupt (``busy_behavior: "interrupt"``) writes ``waiting`` and leaves the queue to the
   worker's finish. Here the worker is killed first and the interrupt lands on an API-only
   server (``CHATD_WORKERS_ENABLED=false``): the committed state is the one a kill between the
   interrupt and the finish leaves, reached without a race. The next server with a worker
   promotes the queue head from its stale recovery and runs the queue through.
2. A turn's final assistant message is committed, its finish is not. The window is held open
   by a real step between them: the final step's usage passes the model config's compaction
   threshold, and the fake provider never answers the summary request. The server is killed
   when the answer shows in the API while the chat is still ``running``; the next server must
   finish those chats without asking the model again (and run on the one whose turn had only
   committed tool results).

Each window is entered by several chats at once, so one kill shows it for all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatd.testing.script import DEFAULT_TEXT
from tests.e2e.server import wait_for
from tests.e2e.turn_harness import (
    Client,
    Fake,
    Servers,
    configure_models,
    fake_provider,
    servers_on,
)

pytestmark = pytest.mark.slow
CHATS = 3
# Short recovery: the next server finds what the dead one left within a few seconds. Not
# shorter: a server whose loop stalls longer than this under a loaded machine would take its
# own running turns for dead ones, and run them again.
RECOVERY = {"CHATD_STALE_AFTER": "4", "CHATD_STALE_RECOVERY_INTERVAL": "0.2"}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with fake_provider(tmp_path / "fake") as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Servers]:
    with servers_on(request.param, tmp_path / "home", **RECOVERY) as running:
        yield running


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("content") or [])


def history(api: Client, chat_id: str) -> list[tuple[str, str]]:
    return [(m["role"], text_of(m)) for m in api.messages(chat_id)]


def streamed(fake: Fake) -> int:
    return sum(1 for r in fake.requests() if r["body"].get("stream"))


def new_chat(api: Client, model: str, text: str) -> str:
    body = {
        "organization_id": api.org_id(),
        "content": [{"type": "text", "text": text}],
        "model_config_id": model,
    }
    return str(api.call("POST", json=body)["id"])


def settled(api: Client, chat_id: str, messages: int) -> bool:
    """Waiting with an empty queue and ``messages`` messages."""
    chat = api.chat(chat_id)
    page = api.call("GET", f"/{chat_id}/messages", params={"limit": 100})
    return (
        chat["status"] == "waiting"
        and page["queued_messages"] == []
        and len(page["messages"]) == messages
    )


def test_a_queue_whose_interrupting_worker_died_is_run_by_the_next_server(
    servers: Servers, fake: Fake
) -> None:
    api = servers.start()
    models = configure_models(api, fake)
    fake.script(*[{"text": "Cut off by the kill.", "stall_after": 1}] * CHATS)
    chats = [new_chat(api, models["openai-compat"], f"one {i}") for i in range(CHATS)]
    wait_for(lambda: streamed(fake) == CHATS, "every first turn to stream")
    for i, chat_id in enumerate(chats):
        assert api.chat(chat_id)["status"] == "running"
        assert api.send(chat_id, f"two {i}")["queued"] is True
    servers.kill()

    api = servers.start(CHATD_WORKERS_ENABLED="false")
    for i, chat_id in enumerate(chats):
        sent = api.send(chat_id, f"three {i}", busy_behavior="interrupt")
        assert sent["queued"] is True
        chat = api.chat(chat_id)
        page = api.call("GET", f"/{chat_id}/messages", params={"limit": 100})
        # What a kill between the interrupt and the finish leaves: no finish is coming.
        assert (chat["status"], len(page["queued_messages"])) == ("waiting", 2)
    servers.stop()

    fake.script(*[{"text": "Answer."}] * (2 * CHATS))
    api = servers.start()
    for chat_id in chats:
        wait_for(lambda c=chat_id: settled(api, c, 5), f"chat {chat_id} to run its queue")
    for i, chat_id in enumerate(chats):
        assert history(api, chat_id) == [
            ("user", f"one {i}"),
            ("user", f"two {i}"),
            ("assistant", "Answer."),
            ("user", f"three {i}"),
            ("assistant", "Answer."),
        ]
        assert api.chat(chat_id).get("last_error") is None
    assert streamed(fake) == 3 * CHATS  # each queued message ran once
    assert fake.remaining() == 0


def test_a_turn_killed_after_its_last_message_is_finished_not_run_again(
    servers: Servers, fake: Fake
) -> None:
    api = servers.start()
    models = configure_models(api, fake)
    # A small context: a step that read 900 tokens passes the default 70 % threshold.
    small = api.call(
        "POST",
        "/model-configs",
        expect=201,
        json={"provider": "openai-compat", "model": "fake-small", "context_limit": 1000},
    )["id"]

    answered: list[str] = []
    for i in range(CHATS):
        fake.script({"text": "Hello."})
        chat_id = new_chat(api, small, f"hello {i}")

        def first_turn_over(c: str = chat_id) -> bool:
            chat = api.chat(c)  # its title and turn summary made (their calls are done)
            return (
                chat["status"] == "waiting"
                and chat["title"] == DEFAULT_TEXT
                and bool(chat.get("last_turn_summary"))
            )

        wait_for(first_turn_over, f"chat {chat_id}'s first turn")
        fake.script(
            {"text": f"Final answer {i}.", "usage": {"input_tokens": 900}},
            {"match": {"stream": False}, "stall_after": 0},  # the summary never comes
        )
        api.send(chat_id, f"finish {i}")

        def answer_committed(c: str = chat_id, n: int = i) -> bool:
            last = api.messages(c)[-1]
            return (last["role"], text_of(last)) == ("assistant", f"Final answer {n}.")

        wait_for(answer_committed, f"chat {chat_id}'s answer")
        assert api.chat(chat_id)["status"] == "running"  # its finish is yet to come
        answered.append(chat_id)
    queued = answered[0]
    assert api.send(queued, "and then?")["queued"] is True

    fake.script(
        {"tool_calls": [{"name": "echo", "args": {"text": "ping"}}]},
        {"text": "Never sent.", "stall_after": 0},  # the step after the tool never starts
    )
    tooled = new_chat(api, models["openai-compat"], "use the tool")
    wait_for(
        lambda: [m["role"] for m in api.messages(tooled)] == ["user", "assistant", "tool"],
        "the tool step to be saved",
    )
    wait_for(lambda: fake.remaining() == 0, "the next step's call")
    assert api.chat(tooled)["status"] == "running"
    before = streamed(fake)
    servers.kill()

    fake.script(*[{"text": "Reply after the restart."}] * 2)
    api = servers.start()
    wait_for(lambda: settled(api, tooled, 4), "the tool turn to continue")
    wait_for(lambda: settled(api, queued, 6), "the queued message's turn")
    for chat_id in answered[1:]:
        wait_for(lambda c=chat_id: settled(api, c, 4), f"chat {chat_id} to finish")
    for i, chat_id in enumerate(answered):
        expected = [
            ("user", f"hello {i}"),
            ("assistant", "Hello."),
            ("user", f"finish {i}"),
            ("assistant", f"Final answer {i}."),
        ]
        if chat_id == queued:
            expected += [("user", "and then?"), ("assistant", "Reply after the restart.")]
        assert history(api, chat_id) == expected
        assert api.chat(chat_id).get("last_error") is None
    assert [role for role, _ in history(api, tooled)] == ["user", "assistant", "tool", "assistant"]
    assert history(api, tooled)[-1] == ("assistant", "Reply after the restart.")
    # Only the queued message and the tool turn asked the model after the restart.
    assert streamed(fake) == before + 2
    assert fake.remaining() == 0
