"""One turn of the agent loop (engine-behaviour §5.5–§5.8).

Each step builds the prompt from the database, streams one model call (retried per §7, with
a startup guard on the first part), publishes the parts as they arrive, runs the step's local
tool calls concurrently, and persists the step. The turn ends when the model stops calling
tools (done), a stop-after tool succeeds (done), calls a client-side tool (requires_action),
fails (error) or reaches ``max_steps`` (done). A chat with a workspace gets its workspace
context into the prompt (:mod:`chatd.engine.workspace_context`), at the start and again after
a tool binds a workspace. When the worker cancels the task it saves what the step has so far and
returns the outcome ``ctx.stop_reason`` names.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from chatd.engine import compaction
from chatd.engine.context_prompt import has_skills
from chatd.engine.cost import cost_micros
from chatd.engine.mcp_servers import ChatServer, TurnMCP, chat_mcp_servers, connect_servers
from chatd.engine.models import ModelChoice, ResolvedModel, build_model, choose_model
from chatd.engine.prompt import INTERRUPTED_RESULT, history_of, load_history
from chatd.engine.resume import OpenCalls, ended_turn, open_calls
from chatd.engine.retry import RetryPolicy, retry
from chatd.engine.step import StepBuilder
from chatd.engine.toolset import (
    CallResult,
    Toolset,
    call_result,
    run_local_calls,
    tool_context,
)
from chatd.engine.turn_workspace import TurnWorkspace
from chatd.engine.types import StopReason, TurnContext
from chatd.engine.workspace_context import current
from chatd.llm.errors import classify, retry_message, startup_timeout_error
from chatd.llm.types import (
    ClassifiedError,
    Message,
    ModelRequest,
    ProviderError,
    ToolCall,
    ToolCallContent,
    Usage,
)
from chatd.sdk.chats import ChatErrorKind, ChatMessageRole
from chatd.sdk.events import ChatStreamRetry
from chatd.secretbox import SecretBox
from chatd.store.chats import get_chat_row
from chatd.store.messages import prompt_rows
from chatd.store.sql import Connection
from chatd.store.steps import Step, StepRefused, save_step
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from chatd.store.workspace_context import latest_context
from chatd.tools.registry import ToolCallContext, ToolOutput, ToolRegistry
from chatd.tools.scope import ChatFacts

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class _Ready:
    """What a turn runs on, as it read it when starting."""

    chat: Mapping[Any, Any]
    toolset: Toolset
    choice: ModelChoice
    history: list[Message]
    # The chat's newest stored workspace context (parts with their internal fields).
    context: list[dict[str, Any]] | None
    # The MCP servers whose tools the turn offers (listed after the read).
    mcp_servers: list[ChatServer]
    # The calls a parked turn left open, made again before the first model call.
    reopened: OpenCalls | None = None


async def _read_start(
    conn: Connection,
    claimed: Mapping[Any, Any] | None,
    chat_id: uuid.UUID,
    tools: ToolRegistry,
    secrets: SecretBox,
) -> _Ready | TurnOutcome:
    """The chat row (as the worker read it when announcing the turn, else read here), the
    history and the model, in one read transaction; or the outcome that ends the turn at once."""
    chat = claimed or await get_chat_row(conn, chat_id)
    if chat is None:
        gone = ClassifiedError(ChatErrorKind.generic, False, "The chat no longer exists.")
        return TurnOutcome(OutcomeKind.error, gone)
    rows = await prompt_rows(conn, chat_id)
    context = await latest_context(conn, chat_id) if chat["workspace_id"] else None
    skills = has_skills(current(context, chat["agent_id"]))
    facts = ChatFacts.of(chat)
    toolset = Toolset.build(tools, chat["dynamic_tools"], facts, has_skills=skills)
    ended = await ended_turn(conn, chat_id, rows, toolset.is_dynamic, toolset.stops_turn)
    if ended is not None:
        # Claimed again after its worker stopped between saving the last step and the
        # finish: finish it now, without asking the model a second time.
        log.info("the turn had ended already", chat_id=str(chat_id), outcome=ended.kind.value)
        return ended
    try:
        choice = await choose_model(
            conn, chat["last_model_config_id"], chat["owner_id"], secrets=secrets
        )
    except ProviderError as exc:
        return TurnOutcome(OutcomeKind.error, exc.error)
    # A sub-agent on a plan turn gets no MCP server (§5.4).
    servers = (
        await chat_mcp_servers(conn, chat, secrets, plan_mode=facts.plan_mode)
        if facts.is_root or not facts.plan_mode
        else []
    )
    history = await history_of(conn, rows)
    return _Ready(chat, toolset, choice, history, context, servers, open_calls(rows))


async def run_turn(ctx: TurnContext) -> TurnOutcome:
    turn: _Turn | None = None
    try:
        start = await ctx.db.run_read(_read_start, ctx.chat, ctx.chat_id, ctx.tools, ctx.db.secrets)
        if isinstance(start, TurnOutcome):
            return start
        toolset, mcp = start.toolset, None
        if start.mcp_servers:
            mcp = await connect_servers(ctx.db, start.mcp_servers, ctx.settings)
            toolset = toolset.with_tools(mcp.tools)
        ctx.model = build_model(start.choice, ctx.client_factory)
        turn = _Turn(ctx, start.chat, ctx.model, toolset, mcp)
        await turn.workspace.prepare(start.context)
        return await turn.run(start.history, start.reopened)
    except asyncio.CancelledError:
        if ctx.stop_reason is None:
            raise  # not the worker's stop: not ours to absorb
        task = asyncio.current_task()
        assert task is not None
        task.uncancel()
        if turn is not None:
            try:
                await _uncancellable(turn.save_interrupted())
            except asyncio.CancelledError:
                task.uncancel()  # stopped again while saving: the save still completed
        return TurnOutcome(OutcomeKind(ctx.stop_reason.value))
    finally:
        if turn is not None:
            await _close(turn.model.client)


async def _close(client: object) -> None:
    """Release the client's connection pool (adapters built without a shared one own it)."""
    aclose = getattr(client, "aclose", None)
    if aclose is not None:
        await aclose()


async def _uncancellable(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end even if this task is cancelled meanwhile (then re-raise)."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


class _Turn:
    def __init__(
        self,
        ctx: TurnContext,
        chat: Mapping[Any, Any],
        model: ResolvedModel,
        toolset: Toolset,
        mcp: TurnMCP | None = None,
    ) -> None:
        self.ctx = ctx
        self.model = model
        self.workspace = TurnWorkspace(ctx, chat, toolset)
        # The chat's MCP servers: one whose tool list changed is listed again before a step.
        self.mcp = mcp
        self.policy = RetryPolicy.from_settings(ctx.settings)
        # The step being built and not yet saved (None when there is nothing to save).
        self.builder: StepBuilder | None = None
        self.results: dict[str, CallResult] = {}
        # The model the chat's row names as its last (each saved step makes it the turn's).
        self.chat_model: uuid.UUID = chat["last_model_config_id"]

    @property
    def toolset(self) -> Toolset:
        return self.workspace.toolset

    async def run(self, history: list[Message], reopened: OpenCalls | None = None) -> TurnOutcome:
        if reopened is not None:
            outcome = await self._reopen(reopened)
            if outcome is not None:
                return outcome
            history = await self._history()
        for _ in range(self.ctx.settings.max_steps):
            if self.mcp is not None:
                self.workspace.toolset = await self.mcp.refreshed(self.toolset)
            started = asyncio.get_running_loop().time()
            request = ModelRequest(
                model=self.model.model,
                messages=self.workspace.prompt(history),
                tools=self.toolset.specs(),
                options=self.model.options,
            )
            try:
                builder = await retry(
                    functools.partial(self._attempt, request),
                    policy=self.policy,
                    classify=self._classify,
                    on_retry=self._on_retry,
                    sleep=self.ctx.sleep,
                )
            except ProviderError as exc:
                return TurnOutcome(OutcomeKind.error, exc.error)
            local = [c for c in builder.calls if not self.toolset.is_dynamic(c.name)]
            dynamic = [c for c in builder.calls if self.toolset.is_dynamic(c.name)]
            if local:
                await self._run_tools(local)
            assistant = builder.assistant_parts()
            if not assistant:
                return TurnOutcome(OutcomeKind.done)
            parked = [self.results[c.id] for c in local if self.results[c.id].parked]
            finished = [self.results[c.id] for c in local if not self.results[c.id].parked]
            finish = builder.finish
            usage = finish.usage if finish else None
            step = Step(
                model_config_id=self.model.config_id,
                assistant=assistant + [f for r in finished for f in r.files],
                tool_results=[r.part for r in finished],
                usage=usage,
                context_limit=self.model.context_limit,
                cost_micros=cost_micros(usage, self.model.cost),
                runtime_ms=round((asyncio.get_running_loop().time() - started) * 1000),
                provider_response_id=finish.provider_response_id if finish else None,
                model_is_current=self.chat_model == self.model.config_id,
            )
            if not await _uncancellable(self._save(step)):
                return self._lost()
            if parked:
                return _parked(parked)
            if any(r.stops for r in finished):  # §5.4: a stop-after tool succeeded
                return TurnOutcome(OutcomeKind.done)
            limit = self.model.context_limit
            if compaction.needed(self.model, usage or Usage(), limit):
                history = await self._history()
                if await compaction.maybe_compact(
                    self.ctx, self.model, history, usage or Usage(), limit
                ):
                    history = await self._history()
            elif local:  # the next step's prompt (a last step needs no reload)
                history = await self._history()
            if local:
                await self.workspace.after_tools()
            if dynamic:
                calls = [ToolCallContent(c.id, c.name, c.args_json) for c in dynamic]
                return TurnOutcome(OutcomeKind.requires_action, tool_calls=calls)
            if not local:
                return TurnOutcome(OutcomeKind.done)
        return TurnOutcome(OutcomeKind.done)

    async def _history(self) -> list[Message]:
        return await self.ctx.db.run_read(load_history, self.ctx.chat_id)

    # ---- one model call -----------------------------------------------------------------

    async def _attempt(self, request: ModelRequest) -> StepBuilder:
        builder = StepBuilder(self.ctx.db.now, self.toolset.mcp_server_of)
        self.builder, self.results = builder, {}
        if self.ctx.start_slot is not None:
            self.ctx.start_slot.free()
        stream = self.model.client.stream(request)
        try:
            parts = aiter(stream)
            guard = asyncio.timeout(self.ctx.settings.startup_timeout)
            try:
                async with guard:
                    first = await anext(parts)
            except StopAsyncIteration:
                return builder
            except TimeoutError:
                if guard.expired():
                    raise ProviderError(startup_timeout_error(self.model.provider)) from None
                raise
            self._publish(builder, first)
            async for part in parts:
                self._publish(builder, part)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return builder

    def _publish(self, builder: StepBuilder, part: Any) -> None:
        published = builder.add(part)
        if published is not None:
            self.ctx.hub.publish_part(self.ctx.chat_id, ChatMessageRole.assistant, published)

    def _classify(self, exc: BaseException) -> ClassifiedError:
        if isinstance(exc, ProviderError):
            return exc.error
        return classify(exc, self.model.provider)

    def _on_retry(self, attempt: int, error: ClassifiedError, delay: float) -> None:
        """The failed attempt's output is dropped, here and in the hub's part buffer."""
        self.builder, self.results = None, {}
        retry_event = ChatStreamRetry(
            attempt=attempt,
            delay_ms=round(delay * 1000),
            error=retry_message(error),
            kind=error.kind,
            provider=error.provider,
            status_code=error.status_code,
            retrying_at=self.ctx.db.now() + dt.timedelta(seconds=delay),
        )
        self.ctx.hub.publish_retry(self.ctx.chat_id, retry_event)

    # ---- tools and persistence ----------------------------------------------------------

    async def _run_tools(
        self,
        calls: list[ToolCall],
        context: Callable[[ToolCall], ToolCallContext] | None = None,
    ) -> None:
        """Run the calls at once, then publish every result in call order, then the files
        the tools attached (§5.6); a parked call has neither yet."""
        await run_local_calls(
            self.toolset,
            calls,
            context or self.workspace.tool_context,
            self.results,
            self.ctx.db.now,
        )
        answered = [self.results[c.id] for c in calls if not self.results[c.id].parked]
        publish = self.ctx.hub.publish_part
        for result in answered:
            publish(self.ctx.chat_id, ChatMessageRole.tool, result.part)
        for result in answered:
            for file in result.files:
                publish(self.ctx.chat_id, ChatMessageRole.assistant, file)

    async def _reopen(self, reopened: OpenCalls) -> TurnOutcome | None:
        """Make again the calls a parked turn left open (``wait_agent``), and save their
        results; the outcome when the turn parks again or ends here, else None (it goes on)."""
        calls = [
            ToolCall(c.id, c.name, c.args_json)
            for c in reopened.calls
            if (tool := self.toolset.active.get(c.name)) is not None and tool.resumes
        ]
        if calls:
            self.results = {}
            scope = self.workspace.scope
            context = tool_context(
                self.ctx.chat_id, scope.facts.owner_id, scope, called_at=reopened.called_at
            )
            await self._run_tools(calls, context)
            parked = [self.results[c.id] for c in calls if self.results[c.id].parked]
            answered = [self.results[c.id] for c in calls if not self.results[c.id].parked]
            if answered:
                step = Step(
                    model_config_id=self.model.config_id,
                    assistant=[f for r in answered for f in r.files],
                    tool_results=[r.part for r in answered],
                    model_is_current=self.chat_model == self.model.config_id,
                )
                if not await _uncancellable(self._save(step)):
                    return self._lost()
            self.results = {}
            if parked:
                return _parked(parked)
        dynamic = [c for c in reopened.calls if self.toolset.is_dynamic(c.name)]
        if dynamic:
            return TurnOutcome(OutcomeKind.requires_action, tool_calls=dynamic)
        return None

    async def _save(self, step: Step) -> bool:
        """Persist and publish a step; False when the chat is no longer ours."""
        try:
            outbox = await save_step(
                self.ctx.db,
                self.ctx.db.now(),
                self.ctx.chat_id,
                self.ctx.worker_id,
                step,
                turn_seq=self.ctx.turn_seq,
            )
        except StepRefused:
            return False
        finally:
            self.builder, self.results = None, {}
        self.chat_model = step.model_config_id
        self.ctx.hub.publish(outbox)
        return True

    async def save_interrupted(self) -> None:
        """The partial step, every call without a result answered as interrupted; no usage.

        On shutdown only a step with tool calls is saved (their tools may have acted; the turn
        resumed elsewhere continues from the results). A partial answer without calls is
        dropped: the resumed turn makes the step again whole, as after a crash, where a kept
        half answer would read as the turn's last word (:mod:`chatd.engine.resume`).
        """
        builder = self.builder
        if builder is None:
            return
        assistant = builder.assistant_parts(include_streaming=True)
        if not assistant:
            return
        calls = builder.calls + builder.interrupted_calls()
        if not calls and self.ctx.stop_reason == StopReason.shutdown:
            return
        now = self.ctx.db.now()
        interrupted = ToolOutput(INTERRUPTED_RESULT, is_error=True)
        results = [
            r
            if (r := self.results.get(call.id)) is not None and not r.parked
            else call_result(self.toolset, call, interrupted, now)
            for call in calls
        ]
        step = Step(
            model_config_id=self.model.config_id,
            assistant=assistant + [f for r in results for f in r.files],
            tool_results=[r.part for r in results],
            model_is_current=self.chat_model == self.model.config_id,
        )
        await self._save(step)

    def _lost(self) -> TurnOutcome:
        reason = self.ctx.stop_reason
        return TurnOutcome(OutcomeKind(reason.value) if reason else OutcomeKind.interrupted)


def _parked(calls: list[CallResult]) -> TurnOutcome:
    """The turn waits for sub-agents: until the first of its waits gives up, or one of the
    chats they wait for settles."""
    until = min(r.parked_until for r in calls if r.parked_until is not None)
    awaited = list(dict.fromkeys(chat_id for r in calls for chat_id in r.awaits))
    return TurnOutcome(OutcomeKind.awaiting, awaiting_until=until, awaited=awaited)
