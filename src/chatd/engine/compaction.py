"""Context compaction (engine-behaviour §8).

After a persisted step, when the context the model saw passed the model config's threshold,
the same model summarises the conversation. The summary is stored as a model-only user row the
prompt query starts from (``store.messages.prompt_rows``); users see a ``chat_summarized`` tool
call and its result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import structlog
from pydantic import JsonValue

from chatd.engine.cost import cost_micros
from chatd.engine.models import ResolvedModel
from chatd.engine.types import TurnContext
from chatd.llm.types import Message, ModelRequest, ProviderError, TextContent, Usage, UserMessage
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.store import stream_log
from chatd.store.compaction import ContextSummary, persist_summary
from chatd.store.errors import StoreError

log = structlog.get_logger(__name__)

TOOL_NAME = "chat_summarized"
SOURCE = "automatic"
DISABLED_THRESHOLD = 100
TIMEOUT = 90.0
EMPTY_SUMMARY = "compaction produced an empty summary"
PERSIST_FAILED = "failed to persist compaction result"

SUMMARY_REQUEST = """\
Context is running out, so this conversation will be replaced by your summary of it. Write \
that summary now for the assistant that continues the work (it will see nothing else). Use \
these sections, each with short bullet points, and keep every detail needed to carry on:

## Invariants
Facts, constraints and requirements that must keep holding (paths, names, versions, rules).

## User decisions
What the user asked for, chose, approved or rejected, in their terms.

## Completed tasks
What has been done, with the files and commands involved and their results.

## Pending tasks
What is left to do, in order.

## Current state
Where the work stands right now: the last action, its outcome, anything half-done.

## Notes for the model
Pitfalls found, approaches that failed, and anything else worth remembering.

Reply with the summary only."""

SUMMARY_PREFACE = (
    "The earlier part of this conversation was summarised to save context. The summary "
    "follows; continue the work from where it left off without asking the user to repeat "
    "anything.\n\n"
)


def context_tokens(usage: Usage) -> int:
    """Tokens the model read: input plus cache reads and writes, else the total."""
    read = usage.input_tokens + usage.cache_read_tokens + usage.cache_creation_tokens
    return read or usage.total_tokens


def should_compact(threshold_percent: int, tokens: int, limit: int) -> bool:
    """``tokens / limit * 100 >= threshold``; 100 (or more) disables, as does no usage."""
    if threshold_percent >= DISABLED_THRESHOLD or limit <= 0 or tokens <= 0:
        return False
    return tokens * 100 >= threshold_percent * limit


def needed(model: ResolvedModel, usage: Usage, context_limit: int) -> bool:
    """Whether the step's context passed the model config's compaction threshold."""
    limit = context_limit if context_limit > 0 else model.context_limit
    return should_compact(model.compression_threshold, context_tokens(usage), limit)


async def maybe_compact(
    ctx: TurnContext, model: ResolvedModel, history: list[Message], usage: Usage, context_limit: int
) -> bool:
    """After a persisted step: summarise the history when the context passed the threshold.

    Returns True when a summary was persisted (the caller reloads the history from the DB).
    """
    if not needed(model, usage, context_limit):
        return False
    limit = context_limit if context_limit > 0 else model.context_limit
    tokens = context_tokens(usage)
    threshold = model.compression_threshold
    call_id = f"{TOOL_NAME}_{uuid.uuid4()}"
    call = ChatMessagePart(
        type=ChatMessagePartType.tool_call,
        tool_call_id=call_id,
        tool_name=TOOL_NAME,
        args={"source": SOURCE, "threshold_percent": threshold},
        created_at=ctx.db.now(),
    )
    ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.assistant, call)
    request = ModelRequest(
        model=model.model,
        messages=[*history, UserMessage([TextContent(SUMMARY_REQUEST)])],
        options=model.options,
        allow_tools=False,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            generated = await model.client.generate(request)
    except (ProviderError, TimeoutError) as exc:
        log.warning("compaction failed", chat_id=str(ctx.chat_id), error=str(exc))
        _publish_error(ctx, call, f"compaction failed: {str(exc) or 'timed out'}")
        return False
    summary = generated.text.strip()
    if not summary:
        _publish_error(ctx, call, EMPTY_SUMMARY)
        return False
    result = _result(
        ctx,
        call,
        {
            "summary": summary,
            "source": SOURCE,
            "threshold_percent": threshold,
            "usage_percent": round(tokens * 100 / limit, 2),
            "context_tokens": tokens,
            "context_limit_tokens": limit,
        },
    )
    usage_columns = dataclasses.asdict(generated.usage)
    usage_columns["total_cost_micros"] = cost_micros(generated.usage, model.cost)
    record = ContextSummary(
        chat_id=ctx.chat_id,
        model_config_id=model.config_id,
        prompt_text=SUMMARY_PREFACE + summary,
        call=call,
        result=result,
        usage=usage_columns,
    )
    try:
        async with ctx.db.write() as conn:
            outbox = await persist_summary(conn, ctx.db.now(), ctx.worker_id, record)
            if outbox is not None:
                await stream_log.seal(conn, outbox, ctx.db.now())
    except StoreError:
        log.exception("persisting the compaction failed", chat_id=str(ctx.chat_id))
        _publish_error(ctx, call, PERSIST_FAILED)
        return False
    if outbox is None:  # the chat is no longer ours: say nothing more
        return False
    ctx.hub.publish(outbox)
    ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.tool, result)
    return True


def _result(
    ctx: TurnContext, call: ChatMessagePart, value: dict[str, JsonValue], *, error: bool = False
) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_result,
        tool_call_id=call.tool_call_id,
        tool_name=TOOL_NAME,
        result=value,
        is_error=error or None,
        created_at=ctx.db.now(),
    )


def _publish_error(ctx: TurnContext, call: ChatMessagePart, text: str) -> None:
    result = _result(ctx, call, {"error": text}, error=True)
    ctx.hub.publish_part(ctx.chat_id, ChatMessageRole.tool, result)
