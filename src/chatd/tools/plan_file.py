"""The chat's plan file: where a plan turn writes its plan (engine-behaviour §5.4, §9.1).

It lives in the workspace's directory, at ``.chatd/plans/<chat id>.md``; during plan turns
write_file and edit_files may only touch it, and propose_plan reads it.
"""

from __future__ import annotations

import posixpath
import uuid

from chatd.tools.registry import ToolCallContext, ToolError
from chatd.workspace.conn import AgentConn

PLAN_DIR = ".chatd/plans"


def relative_plan_path(chat_id: uuid.UUID) -> str:
    return f"{PLAN_DIR}/{chat_id}.md"


def plan_path(directory: str, chat_id: uuid.UUID) -> str:
    """The absolute plan path in an agent's ``directory``."""
    return resolve(directory, relative_plan_path(chat_id))


def resolve(directory: str, path: str) -> str:
    """``path`` as the agent reads it: relative to its directory, normalised."""
    return posixpath.normpath(posixpath.join(directory, path))


def require_plan_target(ctx: ToolCallContext, conn: AgentConn, paths: list[str]) -> None:
    """In a plan turn every path must be the chat's plan file (else a :class:`ToolError`)."""
    scope = ctx.scope()
    if not scope.facts.plan_mode:
        return
    plan = plan_path(conn.directory, scope.facts.chat_id)
    for path in paths:
        if resolve(conn.directory, path) != plan:
            raise ToolError(
                f"This is a planning turn: only the plan file {plan} may be written, "
                f"not {path}. Nothing was changed."
            )
