"""The workspace context (engine-behaviour §9.3, §9.4): stored once per agent, rendered after
the leading system rows, never sent as user input; an agent that does not answer leaves
nothing stored and the next turn asks again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from chatd.agent import protocol
from chatd.agent.protocol import CONTEXT_FILE_MAX
from chatd.engine.context_prompt import insert_system, skill_index, workspace_context
from chatd.engine.workspace_context import RESOURCES_MAX, TOTAL_MAX, context_parts
from chatd.llm.types import SystemMessage, TextContent, UserMessage
from chatd.settings import Settings
from chatd.store import convert
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind
from chatd.store.workspace_context import is_context_message
from chatd.testing import FakeProvider, serve_fake
from tests.engine.tool_turns import ToolTurn, tool_turn
from tests.tools.agents import AgentPool
from tests.tools.workspace_files import add_skill

pytestmark = pytest.mark.anyio


@pytest.fixture
async def turn(
    db: Database, settings: Settings, tmp_path: Path, agent_pool: AgentPool
) -> AsyncIterator[ToolTurn]:
    provider = FakeProvider()
    async with serve_fake(provider) as url:
        made = await tool_turn(db, settings, tmp_path, agent_pool, provider, url)
        yield made
        await made.service.close()


@pytest.fixture
async def impatient(
    db: Database, settings: Settings, tmp_path: Path, agent_pool: AgentPool
) -> AsyncIterator[ToolTurn]:
    """A turn that waits for its agent's context 0.2 s only (for an agent that is away)."""
    provider = FakeProvider()
    async with serve_fake(provider) as url:
        made = await tool_turn(
            db, settings, tmp_path, agent_pool, provider, url, workspace_context_timeout=0.2
        )
        yield made
        await made.service.close()


def context_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r["role"] == "user" and any(p["type"] == "context-file" for p in r["content"])
    ]


async def test_context_is_stored_once_per_agent_and_rendered(turn: ToolTurn) -> None:
    (turn.directory / "AGENTS.md").write_text("Use tabs.\n<!-- hidden -->\nRun make test.\n")
    add_skill(turn.directory, "deploy", "Ship a release.")
    outcome, events = await turn.run({"text": "Hi."})
    assert outcome.kind == OutcomeKind.done
    # The context message was published as it was stored, before the model's answer.
    assert [(e.type, e.message.role) for e in events if e.message][:1] == [("message", "user")]

    rows = await turn.h.rows()
    [stored] = context_rows(rows)
    assert stored["visibility"] == "both" and stored["created_by"] is None
    assert workspace_agent(turn) is not None
    file_part, skill_part = stored["content"]
    assert file_part["context_file_path"] == str(turn.directory / "AGENTS.md")
    assert file_part["context_file_content"] == "Use tabs.\n\nRun make test."
    assert file_part["context_file_agent_id"] == str(workspace_agent(turn))
    assert file_part["context_file_directory"] == str(turn.directory)
    assert file_part["context_file_os"] == "linux"
    assert skill_part["skill_name"] == "deploy" and skill_part["skill_dir"].endswith("deploy")

    # What the API shows: no content, no directory, no skill dir.
    shown = convert.message(stored).model_dump(mode="json")["content"]
    assert shown == [
        {
            "type": "context-file",
            "context_file_path": str(turn.directory / "AGENTS.md"),
            "context_file_agent_id": str(workspace_agent(turn)),
        },
        {"type": "skill", "skill_name": "deploy", "skill_description": "Ship a release."},
    ]
    chat = await turn.chat()
    assert chat["last_injected_context"] == shown
    assert chat["agent_id"] == workspace_agent(turn)

    # The prompt: after the leading system rows; the user message stays the user's own.
    system = turn.system_texts(0)
    assert system[0] == "system"
    context, skills = system[1], system[2]
    assert context == (
        "<workspace-context>\nOperating System: linux\n"
        f"Working Directory: {turn.directory}\n\n"
        f"Source: {turn.directory / 'AGENTS.md'}\nUse tabs.\n\nRun make test.\n"
        "</workspace-context>"
    )
    assert skills.startswith("<available-skills>") and "- deploy: Ship a release." in skills
    users = [m for m in turn.request(0)["messages"] if m["role"] == "user"]
    assert [m["content"] for m in users] == ["hello there"]
    assert "read_skill" in turn.tool_names(0) and "read_skill_file" in turn.tool_names(0)

    # The next turn reuses it: nothing new stored, no context asked of the agent (only its
    # MCP tools, which no .mcp.json here declares: an empty listing is asked for again).
    conn = turn.workspace.conn if turn.workspace else None
    calls_before = list(getattr(conn, "calls", []))
    await turn.h.say("again")
    await turn.run({"text": "Again."})
    assert len(context_rows(await turn.h.rows())) == 1
    asked = getattr(conn, "calls", [])[len(calls_before) :]
    assert [op for op in asked if op != protocol.MCP_TOOLS] == []
    assert turn.system_texts(1)[1:3] == [context, skills]


@pytest.mark.agent_kinds("dispatcher")  # the stand-in's restart and stop
async def test_a_new_agent_stores_its_own_context(turn: ToolTurn) -> None:
    assert turn.workspace is not None
    await turn.run({"text": "One."})
    first = workspace_agent(turn)
    (turn.directory / "AGENTS.md").write_text("Rebuilt.\n")
    turn.workspace.agent.id = uuid.uuid4()  # the workspace was rebuilt
    turn.service.restart(turn.workspace.id)
    await turn.h.say("two")
    # The chat still names the old agent: the turn keeps its context until a tool connects.
    listing = {"tool_calls": [{"id": "c1", "name": "process_list", "args": {}}]}
    await turn.run(listing, {"text": "."})
    await turn.h.say("three")
    await turn.run({"text": "Three."})
    stored = context_rows(await turn.h.rows())
    assert [r["content"][0]["context_file_agent_id"] for r in stored] == [
        str(first),
        str(turn.workspace.agent.id),
    ]
    assert "Rebuilt." in turn.system_texts(3)[1]


async def test_an_agent_without_files_gets_a_blank_marker(turn: ToolTurn) -> None:
    await turn.run({"text": "Hi."})
    [stored] = context_rows(await turn.h.rows())
    [marker] = stored["content"]
    assert marker["context_file_path"] == "" and "context_file_content" not in marker
    assert marker["context_file_agent_id"] == str(workspace_agent(turn))
    assert turn.system_texts(0)[1] == (
        f"<workspace-context>\nOperating System: linux\nWorking Directory: {turn.directory}\n"
        "</workspace-context>"
    )


@pytest.mark.agent_kinds("dispatcher")  # the stand-in's restart and stop
async def test_an_unreachable_agent_stores_nothing_and_the_next_turn_asks_again(
    impatient: ToolTurn,
) -> None:
    turn = impatient
    assert turn.workspace is not None
    turn.service.stop(turn.workspace.id)
    outcome, _ = await turn.run({"text": "Hi."})
    assert outcome.kind == OutcomeKind.done
    assert context_rows(await turn.h.rows()) == []
    assert (await turn.chat())["last_injected_context"] is None
    assert not any("<workspace-context>" in t for t in turn.system_texts(0))

    await turn.service.start(turn.workspace.id)
    await turn.h.say("again")
    await turn.run({"text": "Again."})
    assert len(context_rows(await turn.h.rows())) == 1
    assert "<workspace-context>" in turn.system_texts(1)[1]


def workspace_agent(turn: ToolTurn) -> uuid.UUID | None:
    return turn.workspace.agent.id if turn.workspace else None


def test_rendering() -> None:
    parts = [
        {
            "type": "context-file",
            "context_file_path": "/home/u/.coder/AGENTS.md",
            "context_file_content": "x" * 10,
            "context_file_truncated": True,
            "context_file_os": "linux",
            "context_file_directory": "/w",
        },
        {"type": "context-file", "context_file_path": "/w/AGENTS.md", "context_file_content": ""},
        {"type": "skill", "skill_name": "a"},
        {"type": "skill", "skill_name": "b", "skill_description": "Bee."},
    ]
    assert workspace_context(parts) == (
        "<workspace-context>\nOperating System: linux\nWorking Directory: /w\n\n"
        f"Source: /home/u/.coder/AGENTS.md (truncated to {CONTEXT_FILE_MAX // 1024}KiB)\n"
        "xxxxxxxxxx\n</workspace-context>"
    )
    index = skill_index(parts)
    assert index is not None
    assert index.splitlines()[-3:] == ["- a", "- b: Bee.", "</available-skills>"]
    assert workspace_context([]) is None and skill_index(parts[:2]) is None

    history = [SystemMessage("a"), SystemMessage("b"), UserMessage([TextContent("hi")])]
    inserted = insert_system(history, ["c"])
    assert [m.text if isinstance(m, SystemMessage) else "user" for m in inserted] == [
        "a",
        "b",
        "c",
        "user",
    ]
    appended = insert_system([SystemMessage("a")], ["c"])
    assert [m.text for m in appended if isinstance(m, SystemMessage)] == ["a", "c"]


def test_context_messages_are_nobodys_words() -> None:
    part = {"type": "context-file", "context_file_path": ""}
    assert is_context_message({"role": "user", "created_by": None, "content": [part]})
    assert not is_context_message({"role": "user", "created_by": uuid.uuid4(), "content": [part]})
    text = {"type": "text", "text": "hi"}
    assert not is_context_message({"role": "user", "created_by": None, "content": [text]})


def test_an_agents_context_is_limited_again_on_the_server() -> None:
    """Any agent may answer: each file is cut at 64 KiB (marked), and past 2 MiB in all or
    500 files and skills the rest is dropped, with a log line."""
    agent_id = uuid.uuid4()
    files = [{"path": "/w/AGENTS.md", "content": "é" * CONTEXT_FILE_MAX, "truncated": False}]
    files += [{"path": f"/w/{n}.md", "content": "x" * 60_000} for n in range(40)]
    skills = [{"name": f"s{n}", "description": "d" * 5000, "dir": f"/w/s{n}"} for n in range(600)]
    with capture_logs() as logs:
        parts = context_parts({"files": files, "skills": skills}, agent_id)
    stored = [p for p in parts if p.type == "context-file"]
    first = stored[0]
    assert first.context_file_truncated is True
    assert first.context_file_content == "é" * (CONTEXT_FILE_MAX // 2)
    total = sum(len((p.context_file_content or "").encode()) for p in stored)
    assert total <= TOTAL_MAX and len(stored) < len(files)
    skill_parts = [p for p in parts if p.type == "skill"]
    assert all(len(p.skill_description or "") == 1024 for p in skill_parts)
    assert len(parts) <= RESOURCES_MAX and [p.skill_name for p in skill_parts[:1]] == ["s0"]
    [line] = [entry for entry in logs if entry["event"] == "workspace context cut"]
    assert line["dropped"] == len(files) + len(skills) - len(parts)
    many = context_parts({"skills": [{"name": f"s{n}"} for n in range(600)]}, agent_id)
    assert len(many) == 1 + RESOURCES_MAX and many[-1].skill_name == "s499"  # marker + 500
    # A context within the limits is kept whole.
    small = context_parts({"files": files[1:3], "skills": skills[:2]}, agent_id)
    assert [p.context_file_content for p in small[:2]] == ["x" * 60_000] * 2
    assert not any(p.context_file_truncated for p in small)
