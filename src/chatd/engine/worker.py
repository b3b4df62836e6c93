"""The worker: claims pending chats and runs one turn per chat (engine-behaviour §4, §5.1).

One :class:`Worker` per replica. Three loops run while it is started:

* acquire: every ``acquire_interval``, and at once when ``hub.worker_wakeup`` is set, claim
  pending chats and start a task per chat;
* heartbeat: every ``heartbeat_interval``, one UPDATE for every chat it runs; a chat missing
  from the answer was taken away (interrupt, edit, archive, takeover), so its turn is stopped;
* stale recovery: at start and every ``stale_recovery_interval``, for chats whose worker died
  (:mod:`chatd.store.recovery`: running ones go back to pending, a queue a lost finish should
  have promoted is promoted).

The control channel is a hub listener: a ``status`` event of ``waiting``, ``pending`` or
``error`` for a chat this worker runs stops its turn (``StopReason.interrupted``), unless it
was logged before the claim's ``running`` (see :meth:`Worker._on_stream_event`). The hub hears
of another replica's change through its hint, within milliseconds; the heartbeat is the
backstop. Stopping
means setting ``ctx.stop_reason`` and cancelling the turn task; the turn persists what it has
and returns, and the finishing write (:func:`~chatd.store.worker_state.finish`) decides the
chat's next status: one guarded UPDATE while the chat still runs here with nothing to promote,
else a transaction under the row lock.

A root's turn that waits for its sub-agents ends parked (``awaiting``: the finish lets go of
the chat, which stays running; :mod:`chatd.store.subagents`); when a child's turn ends, its
worker wakes the parent, which a worker then claims like any pending chat.

Shutting down is two calls: :meth:`Worker.begin_shutdown` stops claiming and stops every turn
at once (reason shutdown: the partial step is saved with its calls answered as interrupted,
the chat goes back to pending), and :meth:`Worker.stop` waits for the turns and the loops.
The server calls the first before it closes its connections, so that no turn sees its
workspace agent go away in the middle of a call (engine-behaviour §5.7).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from prometheus_client import Gauge

from chatd.engine import titles
from chatd.engine.models import ClientFactory
from chatd.engine.types import StartSlot, StopReason, TurnContext
from chatd.events.hub import EventHub
from chatd.llm.factory import SharedClients
from chatd.llm.types import ClassifiedError
from chatd.sdk.chats import ChatErrorKind, ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType
from chatd.settings import Settings
from chatd.store import recovery, stream_log, subagents, worker_state
from chatd.store.db import Clock, Database
from chatd.store.outbox import Outbox
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from chatd.tools.workspace_mcp_cache import WorkspaceMCPCache
from chatd.workspace.service import Workspaces

log = structlog.get_logger(__name__)
T = TypeVar("T")

RunTurn = Callable[[TurnContext], Awaitable[TurnOutcome]]
# Turns running in this process: claimed and not yet finished (a turn parked waiting for its
# sub-agents is not one).
TURNS_RUNNING = Gauge("chatd_turns_running", "Chat turns this replica is running.")
# Statuses that, published for a chat this worker runs, mean its turn must stop (§4.6).
_STOPPING = frozenset({ChatStatus.waiting, ChatStatus.pending, ChatStatus.error})
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
TURN_STARTS_AT_ONCE = 2  # see StartSlot
# Turn summaries made at once. They are cosmetic and made after the turn, so they wait for
# each other rather than all run when many turns end together (measured at 100 chats ending
# at once: ~100 ms of loop stall, the p99 of every stream still running).
SUMMARIES_AT_ONCE = 4
# After a wake-up that claimed nothing, the next look comes this soon, then twice as late each
# time, up to the acquire interval (see Worker._acquire_loop).
ACQUIRE_RETRY_FIRST = 0.05


async def _default_run_turn(ctx: TurnContext) -> TurnOutcome:
    from chatd.engine.turn import run_turn  # the turn module imports a lot; load it on use

    return await run_turn(ctx)


@dataclass
class _Running:
    ctx: TurnContext
    # The claim's logged ``running`` status (sealed, published when the turn starts); its
    # number is ``ctx.turn_seq``: a stopping status numbered before it is older than the claim.
    announce: Outbox
    turn: asyncio.Task[TurnOutcome] | None = None
    # An acquire ran while this chat was registered and so could not claim it again.
    excluded: bool = False
    # The claiming transaction has committed. Until then another connection still reads the
    # chat as it was before the claim (pending).
    committed: bool = False

    def stop(self, reason: StopReason) -> None:
        """Cancel the turn once: a second cancel would break its saving of partial output."""
        if self.ctx.stop_reason is not None:
            return
        self.ctx.stop_reason = reason
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()


class Worker:
    def __init__(
        self,
        db: Database,
        hub: EventHub,
        settings: Settings,
        run_turn: RunTurn = _default_run_turn,
        worker_id: uuid.UUID | None = None,
        clock: Clock | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        client_factory: ClientFactory | None = None,
        *,
        workspaces: Workspaces | None = None,
    ) -> None:
        """``client_factory`` is given to every turn (None: the real provider clients), and
        so is ``workspaces`` (None: the workspace tools answer that there are none)."""
        self.db = db
        self.hub = hub
        self.settings = settings
        self.run_turn = run_turn
        self.worker_id = worker_id or uuid.uuid4()
        self.clock = clock or db.now
        self.shutdown_timeout = shutdown_timeout
        self.client_factory = client_factory
        self.workspaces = workspaces
        self.workspace_mcp = WorkspaceMCPCache()
        self._running: dict[uuid.UUID, _Running] = {}
        self._start_places = asyncio.Semaphore(TURN_STARTS_AT_ONCE)
        self._summary_places = asyncio.Semaphore(SUMMARIES_AT_ONCE)
        self._chat_tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        # When the turns stopped by begin_shutdown are given up on (loop time).
        self._shutdown_deadline: float | None = None
        self._shared_clients: SharedClients | None = None

    @property
    def running_chats(self) -> set[uuid.UUID]:
        return set(self._running)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.client_factory is None:
            # One connection pool for every model call of this worker (turns, titles,
            # summaries): without it each call would build its own client, with a new TLS
            # context (the CA bundle loaded again) and connection, which cost more CPU than a
            # short turn's streaming. The pool and the SDKs load with the first call.
            self._shared_clients = self.client_factory = SharedClients()
        self.hub.add_listener(self._on_stream_event)
        await self._recover_stale()
        self._loops = [
            asyncio.create_task(self._acquire_loop(), name="chatd-acquire"),
            asyncio.create_task(self._heartbeat_loop(), name="chatd-heartbeat"),
            asyncio.create_task(self._recovery_loop(), name="chatd-stale-recovery"),
        ]
        log.info("worker started", worker_id=str(self.worker_id))

    def begin_shutdown(self) -> None:
        """Stop claiming and stop every running turn (reason shutdown) without waiting for
        them; :meth:`turns_ended` and :meth:`stop` wait, ``shutdown_timeout`` at most from
        the first call."""
        if self._shutdown_deadline is None:
            self._shutdown_deadline = asyncio.get_running_loop().time() + self.shutdown_timeout
        self._stopping.set()
        for running in list(self._running.values()):
            running.stop(StopReason.shutdown)

    async def turns_ended(self) -> set[asyncio.Task[None]]:
        """Stop the turns (:meth:`begin_shutdown`: again, for any registered since) and wait
        for them to save what they have and finish, until the deadline; returns the ones
        still running then."""
        self.begin_shutdown()
        if not self._chat_tasks:
            return set()
        assert self._shutdown_deadline is not None
        left = max(0.0, self._shutdown_deadline - asyncio.get_running_loop().time())
        _, late = await asyncio.wait(set(self._chat_tasks), timeout=left)
        return late

    async def stop(self) -> None:
        """Stop claiming; stop every turn (its chat goes back to pending); wait for them."""
        self.begin_shutdown()
        await asyncio.gather(*self._loops)
        late = await self.turns_ended()
        if late:
            # Turns that ignore the stop: abandon them; stale recovery gives their chats back.
            for running in self._running.values():
                if running.turn is not None:
                    running.turn.cancel()
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self.hub.remove_listener(self._on_stream_event)
        if self._shared_clients is not None:  # a restart builds a new one
            await self._shared_clients.aclose()
            self._shared_clients, self.client_factory = None, None
        log.info("worker stopped", worker_id=str(self.worker_id))

    def now(self) -> dt.datetime:
        return self.clock()

    # ---- loops -------------------------------------------------------------------------------

    async def _pause(self, seconds: float, *wake: asyncio.Event) -> None:
        """Sleep up to ``seconds``; return early when stopping or any ``wake`` event is set."""
        waiters = [asyncio.create_task(e.wait()) for e in (self._stopping, *wake)]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _acquire_loop(self) -> None:
        # A wake-up that claimed nothing is looked into again soon: on PostgreSQL the claim
        # skips rows locked at that instant (SKIP LOCKED), such as a chat just made pending
        # while the previous turn's summary writes its row, and nothing would wake us again.
        again = 0.0
        while not self._stopping.is_set():
            woken = self.hub.worker_wakeup.is_set() or again > 0
            self.hub.worker_wakeup.clear()
            claimed = await self._guarded("acquire", self._acquire_once())
            if woken and claimed == 0 and not self.db.is_sqlite:
                again = min(max(2 * again, ACQUIRE_RETRY_FIRST), self.settings.acquire_interval)
            else:
                again = 0.0
            await self._pause(again or self.settings.acquire_interval, self.hub.worker_wakeup)

    async def _heartbeat_loop(self) -> None:
        while True:
            await self._pause(self.settings.heartbeat_interval)
            if self._stopping.is_set():
                return
            await self._guarded("heartbeat", self._heartbeat_once())

    async def _recovery_loop(self) -> None:
        while True:
            await self._pause(self.settings.stale_recovery_interval)
            if self._stopping.is_set():
                return
            await self._recover_stale()

    async def _guarded(self, what: str, work: Coroutine[Any, Any, T]) -> T | None:
        """One loop iteration; a failure (say the database is away) waits for the next tick."""
        try:
            return await work
        except Exception:
            log.exception(f"worker {what} failed", worker_id=str(self.worker_id))
            return None

    async def _acquire_once(self) -> int:
        """Claim what is pending and start its turns; returns how many were claimed."""
        for running in self._running.values():
            running.excluded = True
        claimed: list[TurnContext] = []
        try:
            async with self.db.write() as conn:
                rows = await worker_state.acquire_chats(
                    conn,
                    self.now(),
                    self.worker_id,
                    self.settings.max_chats_per_acquire,
                    exclude=set(self._running),
                )
                announced = await worker_state.announce_claims(conn, self.now(), rows)
                # Registered before the claim commits: a change to these chats made after the
                # claim waits for its commit (row lock, or SQLite's writer lock) and is logged
                # after the claim's running, so the control channel stops the turn for it.
                logged = {e.chat_id: e for e in announced.logged}
                claimed = [self._register(row, logged[row["id"]]) for row in rows]
        except BaseException:
            self._unregister(claimed)
            raise
        for ctx in claimed:
            registered = self._running.get(ctx.chat_id)
            if registered is not None and registered.ctx is ctx:
                registered.committed = True
        if self._stopping.is_set():
            self._unregister(claimed)
            async with self.db.write() as conn:
                _, released = await worker_state.release_to_pending(
                    conn, self.now(), [ctx.chat_id for ctx in claimed], self.worker_id
                )
            self.hub.publish(released)
            return 0
        for ctx in claimed:
            task = asyncio.create_task(self._process(ctx), name=f"chatd-chat-{ctx.chat_id}")
            self._chat_tasks.add(task)
            task.add_done_callback(self._chat_tasks.discard)
        return len(claimed)

    def _register(self, row: Mapping[Any, Any], running: stream_log.LoggedEvent) -> TurnContext:
        ctx = TurnContext(
            chat_id=row["id"],
            worker_id=self.worker_id,
            turn_seq=running.seq,
            db=self.db,
            hub=self.hub,
            settings=self.settings,
            client_factory=self.client_factory,
            start_slot=StartSlot(self._start_places),
            chat=row,
            workspaces=self.workspaces,
            workspace_mcp=self.workspace_mcp,
        )
        announce = Outbox(sealed=True, logged=[running])
        self._running[ctx.chat_id] = _Running(ctx, announce)
        return ctx

    def _unregister(self, claimed: list[TurnContext]) -> None:
        for ctx in claimed:
            self._running.pop(ctx.chat_id, None)

    async def _heartbeat_once(self) -> None:
        # Only committed claims: on PostgreSQL a heartbeat running beside an uncommitted claim
        # reads the chat as still pending, and would stop the turn that was just claimed.
        beating = {chat_id: r for chat_id, r in self._running.items() if r.committed}
        if not beating:
            return
        alive = await self.db.run_write_one(
            worker_state.heartbeat, self.now(), self.worker_id, set(beating)
        )
        for chat_id in beating.keys() - alive:
            running = beating[chat_id]
            # Only the turn this heartbeat was for: by now that one may have ended and the
            # chat been claimed again, and the new turn's row was not what this one read.
            if self._running.get(chat_id) is running:
                log.info("heartbeat lost the chat; stopping its turn", chat_id=str(chat_id))
                running.stop(StopReason.interrupted)

    async def _recover_stale(self) -> None:
        async def recover() -> None:
            now = self.now()
            async with self.db.write() as conn:
                outbox = await recovery.recover_stale(conn, now, self.settings.stale_after)
                await stream_log.seal(conn, outbox, now)
            self.hub.publish(outbox)
            retention = dt.timedelta(seconds=self.settings.event_log_retention)
            async with self.db.write() as conn:
                await stream_log.trim(conn, now - retention)

        await self._guarded("stale recovery", recover())

    # ---- the control channel -----------------------------------------------------------------

    def _on_stream_event(self, event: ChatStreamEvent, seq: int) -> None:
        if event.type != ChatStreamEventType.status or event.status is None:
            return
        running = self._running.get(event.chat_id)
        if running is None or event.status.status not in _STOPPING:
            return
        # A status logged before the claim can arrive after it (the send that made the chat
        # pending, read late from the log): its number is older than the claim's running.
        if seq < running.ctx.turn_seq:
            return
        running.stop(StopReason.interrupted)

    # ---- one chat ----------------------------------------------------------------------------

    async def _process(self, ctx: TurnContext) -> None:
        """§5.1: buffer, ``running``, the turn, the finishing transaction, its events."""
        chat_id = ctx.chat_id
        running = self._running[chat_id]
        self.hub.start_turn(chat_id, ctx.turn_seq)
        TURNS_RUNNING.inc()
        try:
            if ctx.start_slot is not None:
                await ctx.start_slot.take()
            if ctx.stop_reason is None:
                self.hub.publish(running.announce)
                self._background_task(_title_task(ctx))
                running.turn = asyncio.create_task(self._guarded_turn(ctx))
                outcome = await _outcome_of(running.turn, ctx)
            else:
                outcome = _stopped(ctx)
            if self._stopping.is_set() and outcome.kind == OutcomeKind.done:
                outcome = TurnOutcome(kind=OutcomeKind.shutdown)  # §5.1: another replica resumes
            finished = await worker_state.finish(
                self.db, self.now(), chat_id, self.worker_id, outcome
            )
            self.hub.publish(finished.outbox)
        except Exception:
            log.exception("finishing the turn failed", chat_id=str(chat_id))
            finished = worker_state.Finished(status=None)
        finally:
            TURNS_RUNNING.dec()
            if ctx.start_slot is not None:
                ctx.start_slot.free()
            self.hub.end_turn(chat_id)
            self._running.pop(chat_id, None)
            if running.excluded:  # it may have become pending again meanwhile
                self.hub.worker_wakeup.set()
        await self._guarded("parent wake-up", self._wake_parent(ctx, finished.status))
        if (
            finished.status is not None
            and running.turn is not None
            and outcome.kind != OutcomeKind.awaiting  # its turn goes on later
        ):
            summary = _summary_task(ctx, finished.status, finished.chat, self._summary_places)
            self._background_task(summary)

    async def _wake_parent(self, ctx: TurnContext, status: ChatStatus | None) -> None:
        """A sub-agent's turn ended: its parent, if parked waiting for it, runs again now
        (stale recovery would find it later; see :mod:`chatd.store.subagents`)."""
        parent_id = ctx.chat["parent_chat_id"] if ctx.chat is not None else None
        if parent_id is None or status in (None, ChatStatus.pending, ChatStatus.running):
            return
        if await self.db.run_write(subagents.wake_parent, self.now(), parent_id):
            self.hub.publish(Outbox(wake_workers=True))  # the parent's hint woke the others

    async def _guarded_turn(self, ctx: TurnContext) -> TurnOutcome:
        """Run the turn; an unexpected failure becomes an ``error`` outcome (like a panic)."""
        try:
            return await self.run_turn(ctx)
        except Exception as exc:
            log.exception("turn failed", chat_id=str(ctx.chat_id))
            return TurnOutcome(
                kind=OutcomeKind.error,
                error=ClassifiedError(
                    kind=ChatErrorKind.generic,
                    retryable=False,
                    message=f"chat processing failed: {exc}",
                ),
            )

    def _background_task(self, work: Coroutine[Any, Any, None]) -> None:
        if self._stopping.is_set():
            work.close()
            return
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _outcome_of(turn: asyncio.Task[TurnOutcome], ctx: TurnContext) -> TurnOutcome:
    """The turn's outcome; a turn that let the cancellation escape stopped for its reason."""
    await asyncio.wait({turn})
    return _stopped(ctx) if turn.cancelled() else turn.result()


def _stopped(ctx: TurnContext) -> TurnOutcome:
    """The outcome of a turn stopped before it could say so itself."""
    if ctx.stop_reason == StopReason.shutdown:
        return TurnOutcome(kind=OutcomeKind.shutdown)
    return TurnOutcome(kind=OutcomeKind.interrupted)


async def _title_task(ctx: TurnContext) -> None:
    try:
        await titles.maybe_generate_title(ctx)
    except Exception:
        log.exception("automatic title failed", chat_id=str(ctx.chat_id))


async def _summary_task(
    ctx: TurnContext,
    status: ChatStatus,
    finished: Mapping[Any, Any] | None,
    places: asyncio.Semaphore,
) -> None:
    try:
        async with places:
            await titles.update_turn_summary(ctx, status, finished)
    except Exception:
        log.exception("turn summary failed", chat_id=str(ctx.chat_id))
