"""Bringing a chat's workspace context up to date at the start of a turn (§9.3, §12).

When the chat has a workspace whose agent has no context message yet, the turn asks the
agent (op ``context``, within ``settings.workspace_context_timeout``, 5 s) for its
instruction files and skills
and stores them once (:func:`chatd.store.workspace_context.persist_context`). An agent that
does not answer leaves nothing stored: the next turn asks again. An agent without files
gets a blank marker part, so it is not asked again.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog

from chatd.agent import protocol
from chatd.agent.protocol import CONTEXT_FILE_MAX
from chatd.engine.types import TurnContext
from chatd.sdk.chats import ChatMessagePartType, StoredMessagePart, parts_json
from chatd.store.workspace_context import context_agent, persist_context
from chatd.tools import caps
from chatd.tools.registry import ToolError
from chatd.tools.workspace_access import WorkspaceAccess
from chatd.workspace.conn import AgentError

log = structlog.get_logger(__name__)
Parts = list[dict[str, Any]]

# What a stored context holds at most (engine-behaviour §9.3): each file cut at
# CONTEXT_FILE_MAX bytes, this many bytes in all, this many files and skills.
TOTAL_MAX = 2 * 1024 * 1024
RESOURCES_MAX = 500
SKILL_DESCRIPTION_MAX = 1024


def _clean(text: Any) -> str:
    """Text as stored: a string without NUL characters (PostgreSQL's JSON refuses them)."""
    return str(text or "").replace("\x00", "")


def context_parts(result: dict[str, Any], agent_id: uuid.UUID) -> list[StoredMessagePart]:
    """The parts of a ``context`` answer: a ``context-file`` per instruction file (a blank
    marker when there is none), then a ``skill`` per skill; re-limited here, whatever the
    agent sent (see :class:`_Budget`)."""
    where = {
        "context_file_agent_id": agent_id,
        "context_file_os": _clean(result.get("operating_system")) or None,
        "context_file_directory": _clean(result.get("directory")) or None,
    }
    budget = _Budget()
    parts: list[StoredMessagePart] = []
    for f in _entries(result, "files"):
        content, cut = caps.cut(_clean(f.get("content")), CONTEXT_FILE_MAX)
        path = _clean(f.get("path"))
        if budget.take(path, content):
            parts.append(
                StoredMessagePart(
                    type=ChatMessagePartType.context_file,
                    context_file_path=path,
                    context_file_content=content,
                    context_file_truncated=bool(f.get("truncated")) or cut or None,
                    **where,
                )
            )
    if not parts:
        parts = [
            StoredMessagePart(type=ChatMessagePartType.context_file, context_file_path="", **where)
        ]
    for s in _entries(result, "skills"):
        name = _clean(s.get("name"))
        description = _clean(s.get("description"))[:SKILL_DESCRIPTION_MAX]
        directory = _clean(s.get("dir"))
        if name and budget.take(name, description, directory):
            parts.append(
                StoredMessagePart(
                    type=ChatMessagePartType.skill,
                    skill_name=name,
                    skill_description=description or None,
                    skill_dir=directory or None,
                )
            )
    if budget.dropped:
        log.warning(
            "workspace context cut",
            agent_id=str(agent_id),
            dropped=budget.dropped,
            kept=budget.count,
            kept_bytes=budget.size,
        )
    return parts


def _entries(result: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = result.get(key)
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


class _Budget:
    """What a context may hold in all, as the reference limits it: ``RESOURCES_MAX`` files
    and skills, ``TOTAL_MAX`` bytes of their text. What does not fit is dropped."""

    def __init__(self) -> None:
        self.count = 0
        self.size = 0
        self.dropped = 0

    def take(self, *texts: str) -> bool:
        size = sum(len(text.encode("utf-8", errors="replace")) for text in texts)
        if self.count >= RESOURCES_MAX or self.size + size > TOTAL_MAX:
            self.dropped += 1
            return False
        self.count += 1
        self.size += size
        return True


def current(stored: Parts | None, agent_id: uuid.UUID | None) -> Parts | None:
    """``stored`` when it is the context of ``agent_id``, else nothing."""
    if stored is None or agent_id is None or context_agent(stored) != str(agent_id):
        return None
    return stored


async def refresh_context(
    ctx: TurnContext, access: WorkspaceAccess, stored: Parts | None
) -> Parts | None:
    """The context of the agent the chat's tools reach: ``stored`` when it is that agent's,
    else asked of the agent and stored; None when the agent does not answer in time."""
    if access.workspace_id is None or not access.available:
        return None
    limit = ctx.settings.workspace_context_timeout
    try:
        async with asyncio.timeout(limit):
            conn = await access.conn(wait=limit)
            known = current(stored, conn.agent_id)
            if known is not None:
                return known
            result = await conn.call(protocol.CONTEXT, {})
    except (ToolError, AgentError, TimeoutError) as exc:
        reason = exc.message if isinstance(exc, ToolError | AgentError) else "timed out"
        log.info("workspace context unavailable", chat_id=str(ctx.chat_id), reason=reason)
        return None
    except Exception:  # the context helps the model; its failure must not fail the turn
        log.exception("workspace context lookup failed", chat_id=str(ctx.chat_id))
        return None
    parts = context_parts(result, conn.agent_id)
    outbox = await ctx.db.run_write(
        persist_context, ctx.db.now(), ctx.chat_id, ctx.worker_id, parts
    )
    if outbox is not None:
        ctx.hub.publish(outbox)
    return parts_json(list(parts))
