"""Skill tools: read_skill, read_skill_file (engine-behaviour §9.4, §13.3)."""

from __future__ import annotations

import posixpath
from typing import Any

from chatd.agent import protocol
from chatd.tools import args as a
from chatd.tools import caps
from chatd.tools.agent_calls import run_op
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj


def check_skill_path(path: str) -> str:
    """A supporting file's path: relative, without ``..`` or hidden components."""
    if posixpath.isabs(path) or path.startswith("\\"):
        raise ToolError(f"path must be relative to the skill's directory, not {path!r}")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        raise ToolError("path is required")
    if any(p == ".." or p.startswith(".") for p in parts):
        raise ToolError(f"path {path!r} may not contain '..' or hidden components")
    return "/".join(parts)


async def _read_skill(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    name = a.string(args, "name").strip()
    return json_output(caps.skill(await run_op(ctx, protocol.READ_SKILL, {"name": name})))


async def _read_skill_file(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    name = a.string(args, "name").strip()
    path = check_skill_path(a.string(args, "path"))
    result = await run_op(ctx, protocol.READ_SKILL_FILE, {"name": name, "path": path})
    return json_output(caps.skill_file(result))


_NAME = {"type": "string", "description": "The skill's name, as the skill index lists it."}

READ_SKILL = Tool(
    name="read_skill",
    description=(
        "Load a skill from the workspace: its instructions and the list of its supporting "
        "files. Read a skill before following it."
    ),
    input_schema=obj({"name": _NAME}, "name"),
    run=_read_skill,
)
READ_SKILL_FILE = Tool(
    name="read_skill_file",
    description="Read one supporting file of a skill (a path from read_skill's files list).",
    input_schema=obj(
        {"name": _NAME, "path": {"type": "string", "description": "Relative to the skill."}},
        "name",
        "path",
    ),
    run=_read_skill_file,
)
