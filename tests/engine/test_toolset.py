"""Which tools a turn offers (engine-behaviour §5.3, §5.4) and the errors of calls outside them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chatd.engine.toolset import Toolset, run_call
from chatd.llm.types import ToolCall
from chatd.tools.builtin import builtin_registry
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput, ToolRegistry
from chatd.tools.scope import ChatFacts

pytestmark = pytest.mark.anyio

WORKSPACE = [
    "read_file",
    "write_file",
    "edit_files",
    "attach_file",
    "execute",
    "process_output",
    "process_list",
    "process_signal",
]
PLATFORM = ["list_templates", "read_template", "create_workspace", "start_workspace"]
SKILLS = ["read_skill", "read_skill_file"]
SUBAGENTS = ["spawn_agent", "spawn_explore_agent", "wait_agent", "message_agent", "close_agent"]


def facts(*, plan: bool = False, child: bool = False, mode: str | None = None) -> ChatFacts:
    return ChatFacts(
        chat_id=uuid.uuid4(),
        owner_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        parent_chat_id=uuid.uuid4() if child or mode else None,
        plan_mode=plan,
        mode=mode,
    )


def offered(chat: ChatFacts, *, skills: bool = False, dynamic: Any = None) -> list[str]:
    toolset = Toolset.build(builtin_registry(), dynamic, chat, has_skills=skills)
    return [spec.name for spec in toolset.specs()]


def test_root_chat() -> None:
    assert offered(facts()) == WORKSPACE + PLATFORM + SUBAGENTS
    assert offered(facts(), skills=True) == WORKSPACE + PLATFORM + SUBAGENTS + SKILLS


def test_child_chat() -> None:
    assert offered(facts(child=True)) == WORKSPACE
    assert offered(facts(child=True), skills=True) == WORKSPACE + SKILLS


def test_root_plan_turn() -> None:
    assert offered(facts(plan=True), skills=True) == [
        "read_file",
        "write_file",
        "edit_files",
        "execute",
        "process_output",
        "ask_user_question",
        *PLATFORM,
        "propose_plan",
        "spawn_agent",
        "spawn_explore_agent",
        "wait_agent",
        *SKILLS,
    ]


def test_child_plan_turn() -> None:
    assert offered(facts(plan=True, child=True)) == ["read_file", "execute", "process_output"]


def test_explore_child() -> None:
    explore = facts(mode="explore")
    assert offered(explore, skills=True) == ["read_file", "execute", "process_output", *SKILLS]
    dynamic = [{"name": "deploy", "input_schema": {"type": "object"}}]
    assert "deploy" not in offered(explore, dynamic=dynamic)
    assert "deploy" in offered(facts(child=True), dynamic=dynamic)


def test_dynamic_tools_are_dropped_on_plan_turns_and_on_collisions() -> None:
    dynamic = [
        {"name": "deploy", "input_schema": {"type": "object"}},
        {"name": "execute", "description": "collides"},
        {"name": "propose_plan", "description": "not offered, so no collision"},
        {"name": ""},
        "junk",
    ]
    assert offered(facts(), dynamic=dynamic)[-2:] == ["deploy", "propose_plan"]
    toolset = Toolset.build(builtin_registry(), dynamic, facts())
    assert toolset.is_dynamic("deploy") and not toolset.is_dynamic("execute")
    assert "deploy" not in offered(facts(plan=True), dynamic=dynamic)


def test_other_registry_tools_are_always_offered() -> None:
    async def echo(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        return ToolOutput("hi")

    extra = Tool("echo", "echo", {"type": "object"}, echo)
    registry = ToolRegistry([*builtin_registry(), extra])
    for chat in (facts(), facts(plan=True), facts(child=True, plan=True)):
        assert Toolset.build(registry, None, chat).specs()[-1].name == "echo"


def test_stop_after_tools() -> None:
    toolset = Toolset.build(builtin_registry(), None, facts(plan=True))
    assert toolset.stops_turn("propose_plan") and toolset.stops_turn("ask_user_question")
    assert not toolset.stops_turn("execute") and not toolset.stops_turn("nope")


async def test_calls_outside_the_turn_are_error_results() -> None:
    chat = facts(child=True)
    toolset = Toolset.build(builtin_registry(), None, chat)
    ctx = ToolCallContext(chat.chat_id, chat.owner_id, "c1")
    inactive = await run_call(toolset, ToolCall("c1", "list_templates", "{}"), ctx)
    assert inactive == ToolOutput("Tool not active in this turn: list_templates", is_error=True)
    unknown = await run_call(toolset, ToolCall("c1", "teleport", "{}"), ctx)
    assert unknown == ToolOutput("Tool not found: teleport", is_error=True)
    outside = await run_call(toolset, ToolCall("c1", "read_file", '{"path": "a"}'), ctx)
    assert outside == ToolOutput("this tool only runs inside a chat turn", is_error=True)
    bad = await run_call(toolset, ToolCall("c1", "read_file", "[1]"), ctx)
    assert bad.is_error and "not a JSON object" in bad.text
