"""The sub-agent tools of root chats (engine-behaviour §13.4, §16).

``spawn_agent`` and ``spawn_explore_agent`` create a child chat that shares the root's
workspace, model and MCP servers and runs through the workers like any chat;
``wait_agent`` answers with the child's report once it is done, and until then parks the
root's turn (:mod:`chatd.store.subagents`), so a root waiting holds no worker and its wait
outlives a restart; ``message_agent`` sends the child a message (queued, or interrupting it);
``close_agent`` stops it. A root is bounded by ``subagent_max_live`` children working at once
and ``subagent_max_turns`` turns asked of its children in all; past either, the tool says so.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from chatd import prompts
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatStatus
from chatd.settings import Settings
from chatd.store import chat_state, stream_log, subagents
from chatd.store.chat_create import NewChat, create_chat
from chatd.store.chats import get_chat_row, lock_chat
from chatd.store.sql import Connection
from chatd.store.transition_steps import ChatArchived, QueueFull, Row
from chatd.store.usage_limits import UsageLimitExceeded, check_spend
from chatd.tools import args as a
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj
from chatd.tools.scope import EXPLORE, TurnScope

DEFAULT_WAIT = 300
MAX_WAIT = 24 * 3600
TITLE_WORDS = 6
TITLE_RUNES = 80
DEFAULT_TITLE = "New Chat"

_PROMPT = {
    "type": "string",
    "description": "The task, with everything the sub-agent needs to know.",
}
_TITLE = {"type": "string", "description": "A short title for the sub-agent's chat."}
_CHAT_ID = {"type": "string", "description": "The sub-agent's chat_id, as its spawn returned."}


def child_title(prompt: str) -> str:
    """The fallback title of a child: its prompt's first six words ("..." when cut)."""
    words = prompt.split()
    if not words:
        return DEFAULT_TITLE
    title = " ".join(words[:TITLE_WORDS])
    if len(words) > TITLE_WORDS:
        title += "..."
    return title[:TITLE_RUNES]


def _root_scope(ctx: ToolCallContext) -> TurnScope:
    scope = ctx.scope()
    if not scope.facts.is_root:
        raise ToolError("delegated chats cannot create or manage child sub-agents")
    return scope


def _settings(scope: TurnScope) -> Settings:
    return scope.settings or Settings()


async def _child(conn: Connection, scope: TurnScope, child_id: uuid.UUID) -> Row:
    child = await subagents.family_child(conn, scope.facts.chat_id, child_id)
    if child is None:
        raise ToolError(f"chat {child_id} is not a sub-agent of this chat")
    return child


async def _check_turns(conn: Connection, scope: TurnScope) -> None:
    limit = _settings(scope).subagent_max_turns
    if await subagents.child_turns(conn, scope.facts.chat_id) >= limit:
        raise ToolError(
            f"this chat's sub-agents have been asked for {limit} turns, the most allowed; "
            "finish the task with what they reported"
        )


async def _check_spend(conn: Connection, scope: TurnScope) -> None:
    try:
        await check_spend(conn, scope.facts.owner_id, scope.db.now())
    except UsageLimitExceeded as exc:
        raise ToolError(
            f"the usage limit is reached (spent {exc.spent_micros} of {exc.limit_micros} "
            f"micro-dollars until {exc.resets_at.isoformat()}); no sub-agent can start"
        ) from None


def _text(text: str) -> list[ChatMessagePart]:
    return [ChatMessagePart(type=ChatMessagePartType.text, text=text)]


# ---- spawn ---------------------------------------------------------------------------------


async def _spawn(args: dict[str, Any], ctx: ToolCallContext, *, explore: bool) -> ToolOutput:
    scope = _root_scope(ctx)
    prompt = a.string(args, "prompt").strip()
    title = a.string(args, "title", required=False).strip()[:TITLE_RUNES] or child_title(prompt)
    now = scope.db.now()
    async with scope.db.write() as conn:
        # The root's row lock makes its concurrent spawns take the caps one at a time.
        parent = await lock_chat(conn, scope.facts.chat_id)
        if parent is None:
            raise ToolError("this chat no longer exists")
        limit = _settings(scope).subagent_max_live
        if await subagents.live_children(conn, parent["id"]) >= limit:
            raise ToolError(
                f"this chat already has {limit} sub-agents working, the most allowed at once; "
                "wait for one (wait_agent) or close one (close_agent) first"
            )
        await _check_turns(conn, scope)
        await _check_spend(conn, scope)
        chat, outbox = await create_chat(conn, now, _new_child(parent, prompt, title, explore))
        await stream_log.seal(conn, outbox, now)
    scope.hub.publish(outbox)
    return json_output({"chat_id": str(chat.id), "title": chat.title, "status": chat.status})


def _new_child(parent: Row, prompt: str, title: str, explore: bool) -> NewChat:
    plan_mode = None if explore else parent["plan_mode"]
    system = [prompts.DEFAULT_SYSTEM_PROMPT, prompts.SUBAGENT]
    if explore:
        system.append(prompts.EXPLORE_SUBAGENT)
    elif plan_mode:
        system.append(prompts.PLAN_SUBAGENT)
    system.append(prompts.WORKSPACE_ATTACHED if parent["workspace_id"] else prompts.NO_WORKSPACE)
    return NewChat(
        owner_id=parent["owner_id"],
        organization_id=parent["organization_id"],
        title=title,
        model_config_id=parent["last_model_config_id"],
        content=_text(prompt),
        system_prompts=system,
        workspace_id=parent["workspace_id"],
        build_id=parent["build_id"],
        agent_id=parent["agent_id"],
        mcp_server_ids=[uuid.UUID(str(i)) for i in parent["mcp_server_ids"] or []],
        plan_mode=plan_mode,
        parent_chat_id=parent["id"],
        root_chat_id=subagents.root_of(parent),
        mode=EXPLORE if explore else None,
    )


async def _spawn_agent(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return await _spawn(args, ctx, explore=False)


async def _spawn_explore_agent(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return await _spawn(args, ctx, explore=True)


# ---- wait ----------------------------------------------------------------------------------


async def _wait_agent(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    scope = _root_scope(ctx)
    child_id = a.identifier(args, "chat_id")
    timeout = min(a.integer(args, "timeout_seconds", DEFAULT_WAIT), MAX_WAIT)
    now = scope.db.now()
    async with scope.db.read() as conn:
        child = await _child(conn, scope, child_id)
        status = ChatStatus(child["status"])
        if subagents.is_working(child) and not child["archived"]:
            deadline = (ctx.called_at or now) + dt.timedelta(seconds=timeout)
            if now >= deadline:
                raise ToolError(
                    f"sub-agent {child_id} is still {status.value} after {timeout} s of "
                    "waiting; wait again, message it, or close it"
                )
            return ToolOutput("", parked_until=deadline, awaits=(child_id,))
        report = await subagents.report(conn, child_id)
    if status == ChatStatus.error:
        error = child["last_error"] if isinstance(child["last_error"], dict) else {}
        detail = report or str(error.get("message") or "")
        raise ToolError(f"sub-agent {child_id} ended in error" + (f": {detail}" if detail else ""))
    return json_output(
        {"chat_id": str(child_id), "title": child["title"], "report": report, "status": status}
    )


# ---- message and close ---------------------------------------------------------------------


async def _message_agent(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    scope = _root_scope(ctx)
    child_id = a.identifier(args, "chat_id")
    message = a.string(args, "message").strip()
    interrupt = a.boolean(args, "interrupt")
    now = scope.db.now()
    new = chat_state.NewUserMessage(author_id=scope.facts.owner_id, content=_text(message))
    async with scope.db.write() as conn:
        await lock_chat(conn, scope.facts.chat_id)  # the turn cap, one message at a time
        child = await _child(conn, scope, child_id)
        await _check_turns(conn, scope)
        await _check_spend(conn, scope)
        try:
            _, outbox = await chat_state.send_message(
                conn, now, child_id, new, chat_state.SendOptions(interrupt=interrupt)
            )
        except ChatArchived:
            raise ToolError(f"sub-agent {child_id} is archived") from None
        except QueueFull:
            raise ToolError(
                f"sub-agent {child_id} has {chat_state.MAX_QUEUE_SIZE} messages queued already"
            ) from None
        after = await get_chat_row(conn, child_id)
        await stream_log.seal(conn, outbox, now)
    scope.hub.publish(outbox)
    assert after is not None
    interrupted = interrupt and child["status"] == ChatStatus.running
    return json_output(
        {
            "chat_id": str(child_id),
            "title": after["title"],
            "status": after["status"],
            "interrupted": interrupted,
        }
    )


async def _close_agent(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    scope = _root_scope(ctx)
    child_id = a.identifier(args, "chat_id")
    async with scope.db.write() as conn:
        await _child(conn, scope, child_id)
        chat, outbox = await chat_state.close(conn, scope.db.now(), child_id)
        await stream_log.seal(conn, outbox, scope.db.now())
    scope.hub.publish(outbox)
    return json_output(
        {"chat_id": str(child_id), "title": chat.title, "terminated": True, "status": chat.status}
    )


SPAWN_AGENT = Tool(
    name="spawn_agent",
    description=(
        "Start a sub-agent: a new chat in this chat's workspace that works on the given task on "
        "its own, with the same tools, while you go on. Use it for independent pieces of work "
        "that can run in parallel. Returns its chat_id; call wait_agent for its report."
    ),
    input_schema=obj({"prompt": _PROMPT, "title": _TITLE}, "prompt"),
    run=_spawn_agent,
)
SPAWN_EXPLORE_AGENT = Tool(
    name="spawn_explore_agent",
    description=(
        "Start a read-only sub-agent that investigates a question in this chat's workspace "
        "(reading files, running read-only commands) and reports back, changing nothing. "
        "Returns its chat_id; call wait_agent for its report."
    ),
    input_schema=obj({"prompt": _PROMPT, "title": _TITLE}, "prompt"),
    run=_spawn_explore_agent,
)
WAIT_AGENT = Tool(
    name="wait_agent",
    description=(
        "Wait until a sub-agent has finished its turn and return its report (its last "
        "message) and status. Gives up with an error after timeout_seconds (default 300)."
    ),
    input_schema=obj(
        {
            "chat_id": _CHAT_ID,
            "timeout_seconds": {
                "type": "integer",
                "description": "How long to wait at most, in seconds (default 300).",
            },
        },
        "chat_id",
    ),
    run=_wait_agent,
    resumes=True,
)
MESSAGE_AGENT = Tool(
    name="message_agent",
    description=(
        "Send a sub-agent a message: more instructions or an answer. It is queued behind the "
        "sub-agent's current work, or, with interrupt, stops that work and runs at once."
    ),
    input_schema=obj(
        {
            "chat_id": _CHAT_ID,
            "message": {"type": "string", "description": "What to tell the sub-agent."},
            "interrupt": {
                "type": "boolean",
                "description": "Stop what the sub-agent is doing and handle this message now.",
            },
        },
        "chat_id",
        "message",
    ),
    run=_message_agent,
)
CLOSE_AGENT = Tool(
    name="close_agent",
    description=(
        "Stop a sub-agent: interrupt what it is doing and drop its queued messages. Its chat "
        "and report stay; message_agent can give it new work later."
    ),
    input_schema=obj({"chat_id": _CHAT_ID}, "chat_id"),
    run=_close_agent,
)
