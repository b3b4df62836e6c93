"""A turn that makes and uses a workspace, against a real ``chatd server``.

The fake model lists the templates, creates a workspace, writes a script, runs it, edits it
and runs it again, then answers: in a local workspace (its agent started by the server, in
bubblewrap when installed), and in an external one whose ``chatd agent`` is killed after the
script is written and started again before it is run (the model's next call waits behind a
gate of the fake provider meanwhile).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e import events as ev
from tests.e2e.turn_harness import Deployment, Fake, deployment, fake_provider
from tests.e2e.workspace_support import ChatdAgent, Rest, call

pytestmark = pytest.mark.slow

SCRIPT = "hello.py"
EDIT = [{"path": SCRIPT, "edits": [{"old_text": "'hello'", "new_text": "'goodbye'"}]}]


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


def workspace_script(template_id: str, name: str) -> list[dict[str, Any]]:
    """The model's replies: one tool call a step, then the answer."""
    return [
        call("list_templates", "call_list"),
        call("create_workspace", "call_create", template_id=template_id, name=name),
        call("write_file", "call_write", path=SCRIPT, content="print('hello')\n"),
        call("execute", "call_run", command=f"python3 {SCRIPT}"),
        call("edit_files", "call_edit", files=EDIT),
        call("execute", "call_rerun", command=f"python3 {SCRIPT}"),
        {"text": "It says goodbye now."},
    ]


CALLS = ["call_list", "call_create", "call_write", "call_run", "call_edit", "call_rerun"]


def tool_labels(events: list[ev.Event]) -> list[str]:
    """The complete tool calls and their results, in stream order."""
    return [label for label in ev.labels(events) if "tool-call call_" in label or "result" in label]


def assert_the_turn(dep: Deployment, chat_id: str, events: list[ev.Event]) -> dict[str, Any]:
    """The stream and the stored messages hold each call and its result; returns the results
    by call id."""
    assert ev.statuses(events)[-1] == "waiting", ev.render(events)
    expected = []
    for call_id in CALLS:
        expected += [f"P(assistant:tool-call {call_id})", f"P(tool:tool-result {call_id})"]
    assert tool_labels(events) == expected
    assert ev.text_of(events).endswith("It says goodbye now.")
    streamed = {p["tool_call_id"]: p for p in ev.parts(events, "tool-result")}
    stored = {
        part["tool_call_id"]: part
        for message in dep.api.messages(chat_id)
        if message["role"] == "tool"
        for part in message["content"]
    }
    assert list(stored) == CALLS
    for call_id in CALLS:
        assert not stored[call_id].get("is_error"), stored[call_id]["result"]
        assert stored[call_id]["result"] == streamed[call_id]["result"]
    results = {call_id: stored[call_id]["result"] for call_id in CALLS}
    assert results["call_write"] == {"ok": True}
    assert (results["call_run"]["exit_code"], results["call_run"]["output"]) == (0, "hello\n")
    assert results["call_edit"]["ok"] is True
    assert "+print('goodbye')" in results["call_edit"]["files"][0]["diff"]
    assert results["call_rerun"]["output"] == "goodbye\n"
    return results


def test_a_turn_makes_a_local_workspace_and_works_in_it(dep: Deployment) -> None:
    rest = Rest(dep)
    scratch = rest.template("scratch")
    chat_id = dep.idle_chat()
    dep.fake.script(*workspace_script(scratch, "e2e-local"))
    with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
        dep.api.send(chat_id, "make a workspace and say hello")
        events = stream.until(ev.settles(), timeout=120)

    results = assert_the_turn(dep, chat_id, events)
    listed = {t["name"]: t["id"] for t in results["call_list"]["templates"]}
    assert listed["scratch"] == scratch
    created = results["call_create"]
    assert created["created"] is True and "agent_status" not in created  # a ready agent
    workspace_id = dep.api.chat(chat_id)["workspace_id"]
    assert workspace_id is not None
    workspace = rest.call("GET", f"/workspaces/{workspace_id}")
    assert workspace["name"] == "e2e-local" and workspace["agent"]["status"] == "connected"
    directory = dep.server.data_dir / "workspaces" / workspace_id
    assert created["directory"] == workspace["agent"]["directory"] == str(directory)
    assert (directory / SCRIPT).read_text() == "print('goodbye')\n"


def test_an_external_agent_restarted_between_two_calls(dep: Deployment, tmp_path: Path) -> None:
    rest = Rest(dep)
    external = rest.template("external", kind="external")
    name = f"e2e-ext-{uuid.uuid4().hex[:6]}"
    made = rest.call(
        "POST",
        f"/organizations/{rest.org}/members/me/workspaces",
        201,
        json={"template_id": external, "name": name},
    )
    agent = ChatdAgent(dep.api.url, made["agent_token"], tmp_path)
    agent.start()
    try:
        rest.wait_agent(made["id"], "connected")
        chat_id = dep.idle_chat(workspace_id=made["id"])
        script = workspace_script(external, name)
        gate = f"restarted-{name}"  # a gate stays open: one of its own
        script[3]["wait_for"] = gate  # the step that runs the script
        dep.fake.script(*script)
        with ev.stream(dep.api.url, dep.api.token, chat_id) as stream:
            dep.api.send(chat_id, "say hello in the workspace")
            stream.until(ev.has("P(tool:tool-result call_write)"), timeout=60)
            agent.kill()
            rest.wait_agent(made["id"], "disconnected")
            agent.start()  # the same token
            rest.wait_agent(made["id"], "connected")
            r = httpx2.post(f"{dep.fake.url}/fake/gates/{gate}", timeout=10)
            assert r.status_code == 204
            events = stream.until(ev.settles(), timeout=120)
        assert rest.agent_status(made["id"]) == "connected"  # the agent started again
    finally:
        agent.stop()

    results = assert_the_turn(dep, chat_id, events)
    assert results["call_create"]["status"] == "already_exists"
    assert dep.api.chat(chat_id)["workspace_id"] == made["id"]
    rest.wait_agent(made["id"], "disconnected")  # stopped with the test
    assert (tmp_path / SCRIPT).read_text() == "print('goodbye')\n"
