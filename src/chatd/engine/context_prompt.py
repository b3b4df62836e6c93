"""The per-turn system text (engine-behaviour §9.2–§9.4): the workspace context, the skill
index and the plan-mode overlay, placed after the history's leading system rows.

The context comes from the chat's stored context parts (:mod:`chatd.store.workspace_context`),
whose ``context-file`` and ``skill`` parts reach the model only here, never as user input.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from chatd.agent.protocol import CONTEXT_FILE_MAX
from chatd.llm.types import Message, SystemMessage
from chatd.tools.plan_file import plan_path, relative_plan_path

Part = dict[str, Any]


def insert_system(messages: list[Message], texts: Sequence[str]) -> list[Message]:
    """``texts`` as system messages right after the leading system messages."""
    if not texts:
        return messages
    at = 0
    while at < len(messages) and isinstance(messages[at], SystemMessage):
        at += 1
    return [*messages[:at], *(SystemMessage(t) for t in texts), *messages[at:]]


def _first(parts: Sequence[Part], key: str) -> str:
    for part in parts:
        value = part.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def workspace_directory(parts: Sequence[Part] | None) -> str:
    return _first(parts or (), "context_file_directory")


def workspace_context(parts: Sequence[Part]) -> str | None:
    """The ``<workspace-context>`` block: the system, the directory, each instruction file."""
    files = [p for p in parts if p.get("type") == "context-file"]
    if not files:
        return None
    lines = ["<workspace-context>"]
    system = _first(files, "context_file_os")
    directory = _first(files, "context_file_directory")
    if system:
        lines.append(f"Operating System: {system}")
    if directory:
        lines.append(f"Working Directory: {directory}")
    for part in files:
        content = part.get("context_file_content")
        if not isinstance(content, str) or not content.strip():
            continue
        source = f"Source: {part.get('context_file_path') or ''}"
        if part.get("context_file_truncated"):
            source += f" (truncated to {CONTEXT_FILE_MAX // 1024}KiB)"
        lines += ["", source, content.rstrip("\n")]
    lines.append("</workspace-context>")
    return "\n".join(lines)


def skill_index(parts: Sequence[Part]) -> str | None:
    """The ``<available-skills>`` block listing each skill with its description."""
    skills = [p for p in parts if p.get("type") == "skill" and p.get("skill_name")]
    if not skills:
        return None
    lines = [
        "<available-skills>",
        "The workspace has skills: instructions for particular kinds of work. Before you "
        "follow one, load it with read_skill; read its supporting files with read_skill_file.",
    ]
    for part in skills:
        description = str(part.get("skill_description") or "").strip()
        name = part["skill_name"]
        lines.append(f"- {name}: {description}" if description else f"- {name}")
    lines.append("</available-skills>")
    return "\n".join(lines)


def plan_overlay(chat_id: uuid.UUID, *, is_root: bool, directory: str) -> str:
    """What a plan turn asks of the model, with the chat's plan file path."""
    if not is_root:
        return (
            "<plan-mode>\nThis is a planning turn. Investigate and report what you find to the "
            "chat that delegated to you; do not change any file or state.\n</plan-mode>"
        )
    path = plan_path(directory, chat_id) if directory else relative_plan_path(chat_id)
    where = "" if directory else " (relative to the workspace directory)"
    return (
        "<plan-mode>\nThis is a planning turn: the user wants a plan, not changes. Read and "
        "run what you need to understand the task, but change nothing except the plan file.\n"
        f"<plan-file-path>{path}</plan-file-path>{where}\n"
        "Write the plan there with write_file or edit_files (not to PLAN.md), then call "
        "propose_plan to present it. If the plan hinges on a choice only the user can make, "
        "call ask_user_question instead.\n</plan-mode>"
    )


def turn_system_texts(
    chat_id: uuid.UUID, context: Sequence[Part] | None, *, plan_mode: bool, is_root: bool
) -> list[str]:
    """The turn's system insertions, in the order of §9.2."""
    parts = context or ()
    texts = [t for t in (workspace_context(parts), skill_index(parts)) if t]
    if plan_mode:
        texts.append(plan_overlay(chat_id, is_root=is_root, directory=workspace_directory(parts)))
    return texts


def has_skills(context: Sequence[Part] | None) -> bool:
    return any(p.get("type") == "skill" for p in context or ())
