"""Turns calling the built-in tools in a real workspace: streamed parts, stored messages,
attachments, stop-after tools, binding a workspace mid-turn, and no workspace at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatd.sdk.chats import ChatMessagePartType
from chatd.sdk.events import ChatWatchEventKind
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.turn_outcome import OutcomeKind
from chatd.testing import FakeProvider
from chatd.tools.plan_file import plan_path
from chatd.tools.workspace_access import NO_WORKSPACE
from tests.engine.tool_turns import ToolTurn, call, tool_turn
from tests.engine.turn_fakes import payloads
from tests.tools.agents import AgentPool

pytestmark = pytest.mark.anyio

QUESTION = {
    "header": "Scope",
    "question": "Refactor everything or only the parser?",
    "options": [
        {"label": "Everything", "description": "A larger change."},
        {"label": "Parser", "description": "Smaller."},
    ],
}


@pytest.fixture
async def turn(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    agent_pool: AgentPool,
    fake: tuple[FakeProvider, str],
) -> AsyncIterator[ToolTurn]:
    made = await tool_turn(db, settings, tmp_path, agent_pool, *fake)
    yield made
    await made.service.close()


@pytest.fixture
async def planning(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    agent_pool: AgentPool,
    fake: tuple[FakeProvider, str],
) -> AsyncIterator[ToolTurn]:
    made = await tool_turn(db, settings, tmp_path, agent_pool, *fake, plan=True)
    yield made
    await made.service.close()


async def test_tools_run_in_the_workspace_and_an_attachment_becomes_a_file_part(
    turn: ToolTurn,
) -> None:
    outcome, events = await turn.run(
        {
            "tool_calls": [
                call("write_file", path="report.md", content="# Report\n\nAll good.\n"),
                call("execute", command="echo ran in $(pwd)"),
            ]
        },
        {"tool_calls": [call("attach_file", path="report.md")]},
        {"text": "Attached the report."},
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    assert (turn.directory / "report.md").read_text() == "# Report\n\nAll good.\n"

    seen = payloads(events)
    results = [p for kind, p in seen if kind == "part:tool"]
    assert [r["tool_name"] for r in results] == ["write_file", "execute", "attach_file"]
    assert results[0]["result"] == {"ok": True}
    assert results[1]["result"]["output"].strip() == f"ran in {turn.directory}"
    attached = results[2]["result"]
    [file_part] = [p for kind, p in seen if kind == "part:assistant" and p["type"] == "file"]
    assert file_part == {
        "type": "file",
        "created_at": file_part["created_at"],
        "media_type": "text/markdown",
        "name": "report.md",
        "file_id": attached["file_id"],
    }
    # The file part follows the attach result on the stream.
    assert seen.index(("part:assistant", file_part)) > seen.index(("part:tool", results[2]))

    rows = await turn.h.rows()
    roles = [r["role"] for r in rows]
    assert roles[-6:] == ["assistant", "tool", "tool", "assistant", "tool", "assistant"]
    step2 = rows[-3]["content"]
    assert [p["type"] for p in step2] == ["tool-call", "file"]
    assert step2[1]["file_id"] == attached["file_id"] and step2[1]["name"] == "report.md"
    assert rows[-1]["content"] == [{"type": "text", "text": "Attached the report."}]
    # The model saw the results, not the attachment.
    last = turn.request(2)["messages"]
    assert any(m["role"] == "tool" and attached["file_id"] in m["content"] for m in last)


async def test_an_agent_error_is_an_error_result_and_the_turn_goes_on(turn: ToolTurn) -> None:
    outcome, _ = await turn.run(
        {"tool_calls": [call("read_file", path="../outside.txt")]},
        {"text": "That path is outside."},
    )
    assert outcome.kind == OutcomeKind.done
    [tool_row] = await turn.h.rows("tool")
    result = tool_row["content"][0]
    assert result["is_error"] is True and "outside the workspace" in result["result"]["error"]


@pytest.mark.agent_kinds("dispatcher")  # no agent is reached
async def test_without_a_workspace_the_tools_say_to_create_one(bare: ToolTurn) -> None:
    outcome, _ = await bare.run(
        {"tool_calls": [call("execute", command="ls")]}, {"text": "I need a workspace."}
    )
    assert outcome.kind == OutcomeKind.done
    [tool_row] = await bare.h.rows("tool")
    assert tool_row["content"][0]["result"] == {"error": NO_WORKSPACE}
    assert "list_templates" in bare.tool_names(0) and "create_workspace" in bare.tool_names(0)
    # Nothing to put in the prompt, and nothing stored for it.
    assert not any("<workspace-context>" in t for t in bare.system_texts(0))
    assert (await bare.chat())["last_injected_context"] is None


async def test_create_workspace_mid_turn_binds_it_for_the_rest_of_the_turn(bare: ToolTurn) -> None:
    template = bare.service.templates[0]
    with bare.h.hub.owner(bare.h.owner.id) as watch:
        outcome, _ = await bare.run(
            {"tool_calls": [call("create_workspace", template_id=str(template.id), name="w1")]},
            {"tool_calls": [call("execute", command="pwd")]},
            {"text": "Ready."},
        )
        watched = watch.drain()
    assert outcome.kind == OutcomeKind.done, outcome.error
    [workspace] = bare.service.workspaces.values()
    chat = await bare.chat()
    assert chat["workspace_id"] == workspace.id and chat["agent_id"] == workspace.agent.id
    assert [e.kind for e in watched] == [ChatWatchEventKind.status_change]
    tool_rows = await bare.h.rows("tool")
    assert tool_rows[0]["content"][0]["result"]["created"] is True
    assert tool_rows[1]["content"][0]["result"]["output"].strip() == str(workspace.directory)
    # The steps after the binding carry the new workspace's context; its message is stored.
    assert not any("<workspace-context>" in t for t in bare.system_texts(0))
    [context] = [t for t in bare.system_texts(1) if "<workspace-context>" in t]
    assert f"Working Directory: {workspace.directory}" in context
    assert chat["last_injected_context"] is not None


async def test_propose_plan_ends_a_plan_turn(planning: ToolTurn) -> None:
    plan = plan_path(str(planning.directory), planning.h.ctx.chat_id)
    outcome, events = await planning.run(
        {"tool_calls": [call("write_file", path=plan, content="# Plan\n\n1. Do it.\n")]},
        {"text": "Here is the plan.", "tool_calls": [call("propose_plan")]},
        {"text": "The model is not asked again."},
    )
    assert outcome.kind == OutcomeKind.done
    assert len(planning.provider.requests) == 2
    offered = planning.tool_names(0)
    assert "propose_plan" in offered and "ask_user_question" in offered
    assert "attach_file" not in offered and "process_signal" not in offered
    [overlay] = [t for t in planning.system_texts(0) if "<plan-mode>" in t]
    assert f"<plan-file-path>{plan}</plan-file-path>" in overlay

    rows = await planning.h.rows()
    assert [r["role"] for r in rows[-4:]] == ["assistant", "tool", "assistant", "tool"]
    proposal = rows[-1]["content"][0]["result"]
    assert proposal["kind"] == "plan" and proposal["path"] == plan
    assert rows[-2]["content"][-1]["type"] == "file"
    assert rows[-2]["content"][-1]["file_id"] == proposal["file_id"]
    published = [p for k, p in payloads(events) if k == "part:assistant" and p["type"] == "file"]
    assert [p["file_id"] for p in published] == [proposal["file_id"]]


async def test_a_failed_stop_after_call_does_not_end_the_turn(planning: ToolTurn) -> None:
    outcome, _ = await planning.run(
        {"tool_calls": [call("ask_user_question", questions=[{"header": "x"}])]},
        {"tool_calls": [call("ask_user_question", "call_2", questions=[QUESTION])]},
        {"text": "Not asked."},
    )
    assert outcome.kind == OutcomeKind.done
    assert len(planning.provider.requests) == 2
    first, second = [r["content"][0] for r in await planning.h.rows("tool")]
    assert first["is_error"] is True
    assert second["result"] == {"questions": [QUESTION]} and not second.get("is_error")


async def test_plan_turns_refuse_other_writes_and_inactive_tools(planning: ToolTurn) -> None:
    outcome, _ = await planning.run(
        {
            "tool_calls": [
                call("write_file", path="main.py", content="x"),
                call("process_list", "call_2"),
            ]
        },
        {"text": "Understood."},
    )
    assert outcome.kind == OutcomeKind.done
    write, listing = [r["content"][0]["result"]["error"] for r in await planning.h.rows("tool")]
    assert "only the plan file" in write
    assert listing == "Tool not active in this turn: process_list"
    assert not (planning.directory / "main.py").exists()


async def test_file_parts_are_wire_parts(turn: ToolTurn) -> None:
    (turn.directory / "a.csv").write_text("a,b\n1,2\n")
    await turn.run({"tool_calls": [call("attach_file", path="a.csv")]}, {"text": "ok"})
    [assistant, _] = await turn.h.rows("assistant")
    file_part = assistant["content"][-1]
    assert file_part["type"] == ChatMessagePartType.file.value
    assert file_part["media_type"] == "text/csv" and "data" not in file_part
