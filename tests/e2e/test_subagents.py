"""Sub-agents end to end (engine-behaviour §16): a real ``chatd server`` and the fake provider
process, a root chat whose scripted model spawns, waits for, messages and closes children.

Each chat's replies are matched by the text of its last user message, so the root and its
children, running at once, each get their own. A reply that must name a child's id (a wait,
a message) is scripted once the child exists: the root's call is held behind a gate until
then (``defer``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.events import render, settles, statuses, stream, watch
from tests.e2e.events import text_of as streamed_text
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
ROOT = "ROOT-TASK"
# Quick recovery: a dead server's running chats are taken back within seconds, and a parked
# root whose wait ran out is woken within a fraction of one.
RECOVERY = {"CHATD_STALE_AFTER": "4", "CHATD_STALE_RECOVERY_INTERVAL": "0.2"}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with fake_provider(tmp_path / "fake") as running:
        yield running


@pytest.fixture(params=["sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def root_step(*calls: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"match": {"user": ROOT}}
    if calls:
        entry["tool_calls"] = list(calls)
    if text is not None:
        entry["text"] = text
    return entry


def held(gate: str, user: str = ROOT) -> dict[str, Any]:
    """A call held until ``gate`` opens, then answered by whatever fits by then."""
    return {"wait_for": gate, "defer": True, "match": {"user": user}}


def child_says(marker: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, "match": {"user": marker}, **extra}


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("content") or [])


def history(api: Client, chat_id: str) -> list[tuple[str, str]]:
    return [(m["role"], text_of(m)) for m in api.messages(chat_id)]


def results(api: Client, chat_id: str) -> dict[str, Any]:
    """Every tool result of the chat, by the called tool's name (a list when several)."""
    found: dict[str, Any] = {}
    for message in api.messages(chat_id):
        for part in message.get("content") or []:
            if part.get("type") == "tool-result":
                found.setdefault(part["tool_name"], []).append(part.get("result"))
    return found


def new_root(api: Client, model: str, text: str) -> str:
    body = {
        "organization_id": api.org_id(),
        "content": [{"type": "text", "text": f"{ROOT}: {text}"}],
        "model_config_id": model,
    }
    return str(api.call("POST", json=body, expect=201)["id"])


def children(api: Client, root: str, count: int) -> list[dict[str, Any]]:
    """The root's children once there are ``count`` of them, oldest first."""
    wait_for(lambda: len(api.chat(root).get("children") or []) >= count, f"{count} children")
    kids = api.chat(root)["children"]
    assert len(kids) == count
    return sorted(kids, key=lambda c: c["created_at"])


def turns_running(api: Client) -> int:
    text = httpx2.get(api.url + "/metrics", timeout=10).text
    found = re.search(r"^chatd_turns_running (\S+)$", text, re.MULTILINE)
    assert found, "no chatd_turns_running metric"
    return int(float(found.group(1)))


def waits_parked(api: Client, root: str, running: int) -> None:
    """The root's step with its wait is saved and its turn let go of its worker: only
    ``running`` turns (its children's) run, while the root still reads ``running``."""

    def parked() -> bool:
        last_call = [m for m in api.messages(root) if m["role"] == "assistant"][-1]
        waiting = any(p.get("tool_name") == "wait_agent" for p in last_call["content"])
        return waiting and turns_running(api) == running

    wait_for(parked, "the root to park its wait")
    assert api.chat(root)["status"] == "running"


def streamed_for(fake: Fake, marker: str) -> list[dict[str, Any]]:
    """The streamed model calls whose last user message names ``marker``."""
    calls = []
    for request in fake.requests():
        body = request["body"]
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        if body.get("stream") and users and marker in json.dumps(users[-1]):
            calls.append(body)
    return calls


def tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools") or []}


def start(servers: Servers, fake: Fake) -> tuple[Client, str]:
    api = servers.start()
    return api, configure_models(api, fake)["openai-compat"]


def test_a_root_spawns_two_children_waits_for_both_and_archives_the_family(
    kind: str, fake: Fake, tmp_path: Path
) -> None:
    with servers_on(kind, tmp_path / "home", **RECOVERY) as servers:
        api, model = start(servers, fake)
        fake.script(
            root_step(
                call("spawn_agent", prompt="CHILD-A: count the files", title="Counter"),
                call("spawn_explore_agent", prompt="CHILD-B: read the docs"),
            ),
            held("root-2"),
            child_says("CHILD-A", "Report A: 42 files."),
            child_says("CHILD-B", "Report B: the docs are fine.", wait_for="child-b"),
        )
        with watch(api.url, api.token) as watched:
            root = new_root(api, model, "survey the project")
            a, b = (c["id"] for c in children(api, root, 2))
            fake.script(
                root_step(call("wait_agent", chat_id=a), call("wait_agent", chat_id=b)),
                root_step(text="Both reported: 42 files, the docs are fine."),
            )
            fake.open_gate("root-2")
            api.wait_status(a, "waiting")
            waits_parked(api, root, running=1)  # only B's turn runs
            with (
                stream(api.url, api.token, root) as root_stream,
                stream(api.url, api.token, b) as child_stream,
            ):
                fake.open_gate("child-b")
                child_events = child_stream.until(lambda ev: "waiting" in statuses(ev))
                root_events = root_stream.until(settles())
            api.wait_status(root, "waiting")
            # The child streams its report; the root, still running to its clients, runs
            # again: the wait's result, then its answer.
            assert streamed_text(child_events) == "Report B: the docs are fine."
            assert statuses(root_events) == ["running", "waiting"]
            assert render(root_events).startswith("S(running) P(tool:tool-result")
            assert streamed_text(root_events) == "Both reported: 42 files, the docs are fine."

            created = watched.until(lambda events: sum(e["kind"] == "created" for e in events) >= 3)
            spawned = [e["chat"] for e in created if e["kind"] == "created"][1:]
            assert {c["id"] for c in spawned} == {a, b}
            assert all(c["parent_chat_id"] == root for c in spawned)

        family = api.chat(root)
        assert [c["id"] for c in sorted(family["children"], key=lambda c: c["created_at"])] == [
            a,
            b,
        ]
        for child in family["children"]:
            assert child["parent_chat_id"] == root and child["root_chat_id"] == root
        # A given title stays; a fallback one (the prompt's first words) is replaced by a
        # generated one, as a root's is.
        assert api.chat(a)["title"] == "Counter"
        (explore_spawn,) = results(api, root)["spawn_explore_agent"]
        assert explore_spawn["title"] == "CHILD-B: read the docs"
        assert history(api, a) == [
            ("user", "CHILD-A: count the files"),
            ("assistant", "Report A: 42 files."),
        ]
        assert history(api, b)[-1] == ("assistant", "Report B: the docs are fine.")
        assert [role for role, _ in history(api, root)] == [
            "user",
            "assistant",
            "tool",
            "tool",
            "assistant",
            "tool",
            "tool",
            "assistant",
        ]
        assert history(api, root)[-1] == (
            "assistant",
            "Both reported: 42 files, the docs are fine.",
        )
        spawns = results(api, root)["spawn_agent"] + results(api, root)["spawn_explore_agent"]
        assert sorted(s["chat_id"] for s in spawns) == sorted([a, b])
        reports = {r["chat_id"]: r for r in results(api, root)["wait_agent"]}
        assert reports[a] == {
            "chat_id": a,
            "title": "Counter",
            "report": "Report A: 42 files.",
            "status": "waiting",
        }
        assert reports[b]["report"] == "Report B: the docs are fine."

        # The root offers the sub-agent tools; a child does not, and an explore child keeps
        # only the read-only built-ins.
        assert "spawn_agent" in tool_names(streamed_for(fake, ROOT)[0])
        assert "spawn_agent" not in tool_names(streamed_for(fake, "CHILD-A")[0])
        explore = tool_names(streamed_for(fake, "CHILD-B")[0])
        assert {"read_file", "execute", "process_output"} <= explore
        assert not explore & {"write_file", "edit_files", "process_signal", "spawn_agent"}
        # The wait was asked of the model once: resuming it did not call the model again.
        assert len(streamed_for(fake, ROOT)) == 3

        api.call("PATCH", f"/{root}", json={"archived": True}, expect=204)
        assert api.chat(a)["archived"] and api.chat(b)["archived"]
        listed = api.call("GET", params={"q": "archived:true"})
        assert [c["id"] for c in listed] == [root]


def test_message_with_interrupt_redirects_a_child_and_close_stops_another(
    kind: str, fake: Fake, tmp_path: Path
) -> None:
    with servers_on(kind, tmp_path / "home", **RECOVERY) as servers:
        api, model = start(servers, fake)
        fake.script(
            root_step(
                call("spawn_agent", prompt="CHILD-C: refactor the parser"),
                call("spawn_agent", prompt="CHILD-D: run the slow suite", title="Suite"),
            ),
            held("root-2"),
            child_says("CHILD-C:", "never sent", wait_for="never-c"),
            child_says("CHILD-D:", "never sent", wait_for="never-d"),
        )
        root = new_root(api, model, "fix the parser")
        c, d = (k["id"] for k in children(api, root, 2))
        for child in (c, d):
            api.wait_status(child, "running")
        fake.script(
            root_step(
                call(
                    "message_agent",
                    chat_id=c,
                    message="CHILD-C2: stop, only rename the module",
                    interrupt=True,
                ),
                call("close_agent", chat_id=d),
            ),
            child_says("CHILD-C2", "Renamed the module."),
            root_step(call("wait_agent", chat_id=c)),
            root_step(text="C renamed the module; D was stopped."),
        )
        fake.open_gate("root-2")
        api.wait_status(root, "waiting")

        found = results(api, root)
        (message,) = found["message_agent"]
        assert message["chat_id"] == c and message["interrupted"] is True
        (closed,) = found["close_agent"]
        assert closed == {
            "chat_id": d,
            "title": "Suite",
            "terminated": True,
            "status": "waiting",
        }
        (report,) = found["wait_agent"]
        assert report["report"] == "Renamed the module."
        assert history(api, c) == [
            ("user", "CHILD-C: refactor the parser"),
            ("user", "CHILD-C2: stop, only rename the module"),
            ("assistant", "Renamed the module."),
        ]
        assert history(api, d) == [("user", "CHILD-D: run the slow suite")]
        assert api.chat(d)["status"] == "waiting"
        assert history(api, root)[-1] == ("assistant", "C renamed the module; D was stopped.")


def test_the_caps_and_a_wait_that_runs_out_answer_the_model_with_errors(
    kind: str, fake: Fake, tmp_path: Path
) -> None:
    caps = {"CHATD_SUBAGENT_MAX_LIVE": "1", "CHATD_SUBAGENT_MAX_TURNS": "2"}
    with servers_on(kind, tmp_path / "home", **RECOVERY, **caps) as servers:
        api, model = start(servers, fake)
        fake.script(
            root_step(call("spawn_agent", prompt="CHILD-X: first")),
            root_step(call("spawn_agent", prompt="CHILD-Y: second")),
            held("root-3"),
            child_says("CHILD-X:", "never sent", wait_for="never-x"),
        )
        root = new_root(api, model, "do two things")
        (x,) = (k["id"] for k in children(api, root, 1))
        fake.script(
            root_step(call("message_agent", chat_id=x, message="CHILD-X2: and more")),
            root_step(call("message_agent", chat_id=x, message="CHILD-X3: and even more")),
            root_step(call("wait_agent", chat_id=x, timeout_seconds=1)),
            root_step(call("close_agent", chat_id=x)),
            root_step(text="Stopped at the caps."),
        )
        fake.open_gate("root-3")
        api.wait_status(root, "waiting")

        found = results(api, root)
        first, second = found["spawn_agent"]
        assert first["chat_id"] == x
        assert "already has 1 sub-agents working" in second["error"]
        queued, refused = found["message_agent"]
        assert queued["chat_id"] == x and queued["interrupted"] is False
        assert "asked for 2 turns" in refused["error"]
        (timed_out,) = found["wait_agent"]
        assert f"sub-agent {x} is still running after 1 s" in timed_out["error"]
        assert found["close_agent"][0]["status"] == "waiting"
        assert len(api.chat(root)["children"]) == 1
        # Closing dropped the queued message: the child never ran it.
        page = api.call("GET", f"/{x}/messages")
        assert page["queued_messages"] == []
        assert history(api, x) == [("user", "CHILD-X: first")]
        assert api.chat(x)["status"] == "waiting"


def test_a_root_waiting_through_a_server_restart_gets_its_report(
    kind: str, fake: Fake, tmp_path: Path
) -> None:
    with servers_on(kind, tmp_path / "home", **RECOVERY) as servers:
        api, model = start(servers, fake)
        fake.script(
            root_step(call("spawn_agent", prompt="CHILD-K: the long job", title="Long job")),
            held("root-2"),
            child_says("CHILD-K", "never sent", wait_for="never-k"),
        )
        root = new_root(api, model, "run the long job")
        (k,) = (c["id"] for c in children(api, root, 1))
        fake.script(root_step(call("wait_agent", chat_id=k, timeout_seconds=600)))
        fake.open_gate("root-2")
        waits_parked(api, root, running=1)  # only K's turn runs
        servers.kill()

        fake.script(
            child_says("CHILD-K", "Report K: done."),
            root_step(text="K reported: done."),
        )
        api = servers.start()
        api.wait_status(root, "waiting")
        assert history(api, root) == [
            ("user", f"{ROOT}: run the long job"),
            ("assistant", ""),
            ("tool", ""),
            ("assistant", ""),
            ("tool", ""),
            ("assistant", "K reported: done."),
        ]
        (report,) = results(api, root)["wait_agent"]
        assert report == {
            "chat_id": k,
            "title": "Long job",
            "report": "Report K: done.",
            "status": "waiting",
        }
        assert history(api, k)[-1] == ("assistant", "Report K: done.")
        # The root's model was asked three times: spawn, wait, and the answer; the restart
        # made it ask nothing twice.
        assert len(streamed_for(fake, ROOT)) == 3


def test_interrupting_a_parked_root_answers_its_wait_and_leaves_the_child(
    kind: str, fake: Fake, tmp_path: Path
) -> None:
    with servers_on(kind, tmp_path / "home", **RECOVERY) as servers:
        api, model = start(servers, fake)
        fake.script(
            root_step(call("spawn_agent", prompt="CHILD-Z: keep going")),
            held("root-2"),
            child_says("CHILD-Z", "never sent", wait_for="never-z"),
        )
        root = new_root(api, model, "start and wait")
        (z,) = (c["id"] for c in children(api, root, 1))
        fake.script(root_step(call("wait_agent", chat_id=z)))
        fake.open_gate("root-2")
        waits_parked(api, root, running=1)

        interrupted = api.call("POST", f"/{root}/interrupt")
        assert interrupted["status"] == "waiting"
        (answer,) = results(api, root)["wait_agent"]
        assert "interrupted" in answer["error"]
        assert api.chat(z)["status"] == "running"  # the child goes on
        fake.script(root_step(text="Noted."))
        api.send(root, f"{ROOT}: anything else?")
        api.wait_status(root, "waiting")
        assert history(api, root)[-1] == ("assistant", "Noted.")
