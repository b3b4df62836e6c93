"""The built-in tools, in the order a turn offers them (engine-behaviour §5.3), and the names
plan turns and explore sub-agents allow (§5.4). Which of them a turn offers is
:mod:`chatd.engine.toolset`'s call."""

from __future__ import annotations

from chatd.tools.execute import EXECUTE
from chatd.tools.files import ATTACH_FILE, EDIT_FILES, READ_FILE, WRITE_FILE
from chatd.tools.plan import ASK_USER_QUESTION, PROPOSE_PLAN
from chatd.tools.processes import PROCESS_LIST, PROCESS_OUTPUT, PROCESS_SIGNAL
from chatd.tools.registry import Tool, ToolRegistry
from chatd.tools.skills import READ_SKILL, READ_SKILL_FILE
from chatd.tools.subagents import (
    CLOSE_AGENT,
    MESSAGE_AGENT,
    SPAWN_AGENT,
    SPAWN_EXPLORE_AGENT,
    WAIT_AGENT,
)
from chatd.tools.templates import LIST_TEMPLATES, READ_TEMPLATE
from chatd.tools.workspace_tools import CREATE_WORKSPACE, START_WORKSPACE

# Every chat.
WORKSPACE_TOOLS: tuple[Tool, ...] = (
    READ_FILE,
    WRITE_FILE,
    EDIT_FILES,
    ATTACH_FILE,
    EXECUTE,
    PROCESS_OUTPUT,
    PROCESS_LIST,
    PROCESS_SIGNAL,
)
# Root chats.
PLATFORM_TOOLS: tuple[Tool, ...] = (
    LIST_TEMPLATES,
    READ_TEMPLATE,
    CREATE_WORKSPACE,
    START_WORKSPACE,
)
# Root chats, after the platform tools (and propose_plan).
SUBAGENT_TOOLS: tuple[Tool, ...] = (
    SPAWN_AGENT,
    SPAWN_EXPLORE_AGENT,
    WAIT_AGENT,
    MESSAGE_AGENT,
    CLOSE_AGENT,
)
# Chats whose workspace has skills.
SKILL_TOOLS: tuple[Tool, ...] = (READ_SKILL, READ_SKILL_FILE)
# Root chats on plan turns: ask_user_question before the platform tools, propose_plan after.
PLAN_QUESTION = ASK_USER_QUESTION
PLAN_PROPOSAL = PROPOSE_PLAN

BUILTIN_TOOLS: tuple[Tool, ...] = (
    *WORKSPACE_TOOLS,
    PLAN_QUESTION,
    *PLATFORM_TOOLS,
    PLAN_PROPOSAL,
    *SUBAGENT_TOOLS,
    *SKILL_TOOLS,
)
BUILTIN_NAMES = frozenset(t.name for t in BUILTIN_TOOLS)

# Plan turns: allowed in every chat, and in root chats only (the rest are not offered).
PLAN_ALLOWED = frozenset(
    {"read_file", "execute", "process_output", "read_skill", "read_skill_file"}
)
PLAN_ALLOWED_ROOT = frozenset(
    {
        "write_file",
        "edit_files",
        "list_templates",
        "read_template",
        "create_workspace",
        "start_workspace",
        "propose_plan",
        "ask_user_question",
        "spawn_agent",
        "spawn_explore_agent",
        "wait_agent",
    }
)


# Explore sub-agents: read and run, nothing else (no dynamic tools, no workspace MCP tools).
EXPLORE_ALLOWED = frozenset(
    {"read_file", "execute", "process_output", "read_skill", "read_skill_file"}
)


def builtin_registry() -> ToolRegistry:
    """A registry of the built-in tools alone."""
    return ToolRegistry(list(BUILTIN_TOOLS))
