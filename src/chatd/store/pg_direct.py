"""PostgreSQL statements run from the calling coroutine, without SQLAlchemy's greenlet hop.

SQLAlchemy's asyncio layer runs each ``execute``, checkout and return as sync code in a new
greenlet, which hops back to the event loop for every driver call. Measured here, a
primary-key read in autocommit (checkout, statement, return) cost ~190 µs of CPU that way,
against ~80 µs for asyncpg's own pool, and SQLAlchemy was a quarter of chatd's CPU at a
hundred streaming chats. :class:`DirectAsyncConnection` brings the read to ~100 µs: plain
statements (:func:`chatd.store.direct_sql.plan`) go through the asyncpg adapter's own cursor
coroutine (the same prepared-statement cache, lazy ``BEGIN`` and error translation), and an
idle pooled connection is checked out and returned inline. Transactions' ``BEGIN`` and
``COMMIT`` still take the greenlet. Errors are handed to SQLAlchemy's handler, so callers see
the same ``sqlalchemy.exc`` exceptions and a dropped connection is invalidated as before.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.util.concurrency import greenlet_spawn

from chatd.store.direct_sql import plan


class DirectAsyncConnection(AsyncConnection):
    """An :class:`AsyncConnection` whose plain statements skip the greenlet (see the module).

    Checking out an idle pooled connection and returning one with no transaction open run
    inline too: neither waits for anything. A connection that must first reconnect (after it
    was invalidated) or roll back takes SQLAlchemy's greenlet path.
    """

    async def start(self, is_ctxmanager: bool = False) -> DirectAsyncConnection:
        if self.sync_connection is None and _next_idle_is_open(self.sync_engine.pool):
            self.sync_connection = self._assign_proxied(self.sync_engine.connect())
            return self
        await super().start(is_ctxmanager)
        return self

    def _close_inline(self) -> bool:
        """Return the connection to the pool at once if that cannot wait for the driver."""
        conn = self.sync_connection
        fairy = conn._dbapi_connection if conn is not None else None
        adapter = fairy.dbapi_connection if fairy is not None else None
        if conn is None or adapter is None or adapter._transaction is not None:
            return False
        if conn.in_transaction():
            return False
        conn.close()
        return True

    async def close(self) -> None:
        if not self._close_inline():
            await super().close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        # Closing inline cannot be interrupted, so it needs no task shielded from cancellation.
        if not self._close_inline():
            await super().__aexit__(type_, value, traceback)

    async def execute(
        self,
        statement: Any,
        parameters: Any = None,
        *,
        execution_options: Any = None,
    ) -> Any:
        conn = self._proxied
        planned = plan(conn, statement, parameters, execution_options)
        if planned is None:
            return await super().execute(statement, parameters, execution_options=execution_options)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            await cursor._prepare_and_execute(planned.sql, planned.args)
        except Exception as error:
            # SQLAlchemy's handler wraps the error (``sqlalchemy.exc``) and invalidates a
            # dropped connection; it may roll back through the driver, so it runs in a greenlet.
            await greenlet_spawn(
                conn._handle_dbapi_exception, error, planned.sql, planned.args, cursor, None
            )
            raise
        return planned.result(cursor._rows, cursor.rowcount)


def _next_idle_is_open(pool: Pool) -> bool:
    """The pool would hand out an idle connection that needs no reconnecting (which awaits).

    It peeks at the pool's internals (SQLAlchemy is pinned): the LIFO queue's top record must
    hold a driver connection opened after the pool's last invalidation (after a dropped
    connection every older one is replaced on checkout) and not be marked for replacement.
    """
    if not isinstance(pool, QueuePool) or not pool._pool.use_lifo:
        return False
    # AsyncAdaptedQueue over an asyncio.LifoQueue, whose list's end is taken next.
    idle = pool._pool._queue._queue  # type: ignore[attr-defined]
    if not idle:
        return False
    record = idle[-1]
    # The negation of the tests by which a record reconnects on checkout (get_connection).
    return (
        record.dbapi_connection is not None
        and pool._recycle < 0
        and not pool._invalidate_time > record.starttime
        and not record._soft_invalidate_time > record.starttime
    )


class DirectAsyncEngine(AsyncEngine):
    _connection_cls = DirectAsyncConnection

    def execution_options(self, **opt: Any) -> AsyncEngine:
        return DirectAsyncEngine(self.sync_engine.execution_options(**opt))


def direct_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` (asyncpg) with :class:`DirectAsyncConnection` connections."""
    return DirectAsyncEngine(engine.sync_engine)
