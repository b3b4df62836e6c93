"""PostgreSQL statements run from the calling coroutine, without SQLAlchemy's greenlet hop.

SQLAlchemy's asyncio layer runs each ``execute``, checkout and return as sync code in a new
greenlet, which hops back to the event loop for every driver call, and builds an execution
context, a cursor result and their events around each statement. Measured here, a
primary-key read in autocommit (checkout, statement, return) cost ~190 µs of CPU that way
against ~80 µs for asyncpg's own pool, and SQLAlchemy was a quarter of chatd's CPU at a
hundred streaming chats. :class:`DirectAsyncConnection` brings the read to ~100 µs. It keeps
SQLAlchemy for what it is good at: compiling statements (through the engine's compiled cache),
converting bound and result values (the types' processors), the pool, and transactions
(``BEGIN`` and ``COMMIT`` still take the greenlet). It sends the compiled SQL through the
asyncpg adapter's own cursor coroutine: the same prepared-statement cache, lazy ``BEGIN`` and
error translation.

Only plain statements go this way: a select or an insert, update or delete, with one set of
parameters, no execution options, and no Python-side column defaults to compute. Anything else
takes SQLAlchemy's own path: text, DDL, executemany, an engine that echoes statements, and
statements watched by execute or cursor events (tests add those to count statements). Errors
are handed to SQLAlchemy's handler, so callers see the same ``sqlalchemy.exc`` exceptions and a
dropped connection is invalidated as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.engine.base import OptionEngine
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool, QueuePool
from sqlalchemy.sql import compiler
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.selectable import CompoundSelect, Select
from sqlalchemy.util.concurrency import greenlet_spawn

_DIRECT_STATEMENTS = (Select, CompoundSelect, Insert, Update, Delete)


class DirectResult(IteratorResult[Any]):
    """The rows of one statement, as SQLAlchemy's results offer them, plus ``rowcount``."""

    def __init__(self, metadata: SimpleResultMetaData, rows: Sequence[Any], rowcount: int):
        super().__init__(metadata, iter(rows))
        self.rowcount = rowcount


@dataclass(frozen=True)
class _Shape:
    """What every run of one compiled statement shares."""

    metadata: SimpleResultMetaData | None  # None: the statement returns no rows
    expands: bool  # IN lists rendered per call (``post_compile`` parameters)


_shapes: weakref.WeakKeyDictionary[SQLCompiler, _Shape | None] = weakref.WeakKeyDictionary()


def _shape(compiled: SQLCompiler) -> _Shape | None:
    """The compiled statement's shape, or None when it must take SQLAlchemy's path."""
    try:
        return _shapes[compiled]
    except KeyError:
        pass
    shape: _Shape | None = None
    if compiled.positional and not (compiled.insert_prefetch or compiled.update_prefetch):
        columns = compiled._result_columns
        metadata = None
        if columns:
            dialect = compiled.dialect
            metadata = SimpleResultMetaData(
                [c.keyname for c in columns],
                extra=[c.objects for c in columns],
                _processors=[c.type._cached_result_processor(dialect, None) for c in columns],
            )
        expands = bool(compiled.literal_execute_params or compiled.post_compile_params)
        shape = _Shape(metadata, expands)
    _shapes[compiled] = shape
    return shape


def _positional(
    compiled: SQLCompiler, shape: _Shape, values: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """The SQL to send and its parameters in order, each through its type's bind processor."""
    processors: Mapping[str, Any] = compiled._bind_processors
    sql = compiled.string
    order: Sequence[str] | None = compiled.positiontup
    if shape.expands:
        expanded = compiled._process_parameters_for_postcompile(dict(values))
        sql = expanded.statement
        values = expanded.parameters
        order = expanded.positiontup
        processors = {**processors, **expanded.processors}
    assert order is not None
    return sql, [
        processors[key](values[key]) if key in processors else values[key] for key in order
    ]


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
        if (
            execution_options
            or not isinstance(statement, _DIRECT_STATEMENTS)
            or statement._execution_options
            or not (parameters is None or isinstance(parameters, Mapping))
            or _observed(conn)
            or conn._echo
            or "schema_translate_map" in conn._execution_options
        ):
            return await super().execute(statement, parameters, execution_options=execution_options)
        dialect = conn.dialect
        compiled, extracted, collected, _ = statement._compile_w_cache(
            dialect=dialect,
            compiled_cache=conn._execution_options.get(
                "compiled_cache", conn.engine._compiled_cache
            ),
            column_keys=sorted(parameters) if parameters else [],
            for_executemany=False,
            schema_translate_map=None,
            linting=dialect.compiler_linting | compiler.WARN_LINTING,
        )
        assert isinstance(compiled, SQLCompiler)
        shape = _shape(compiled)
        if shape is None:
            return await super().execute(statement, parameters, execution_options=execution_options)
        values = compiled.construct_params(
            parameters,
            escape_names=False,
            extracted_parameters=extracted,
            _collected_params=collected,
        )
        sql, args = _positional(compiled, shape, values)
        return await _run(conn, shape, sql, args)


async def _run(conn: Connection, shape: _Shape, sql: str, args: list[Any]) -> DirectResult:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        await cursor._prepare_and_execute(sql, args)
    except Exception as error:
        # SQLAlchemy's handler wraps the error (``sqlalchemy.exc``) and invalidates a dropped
        # connection; it may roll back through the driver, so it runs as SQLAlchemy code does.
        await greenlet_spawn(conn._handle_dbapi_exception, error, sql, args, cursor, None)
        raise
    rows = cursor._rows if shape.metadata is not None else ()
    return DirectResult(shape.metadata or _NO_ROWS, rows, cursor.rowcount)


_NO_ROWS = SimpleResultMetaData([])


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


def _observed(conn: Connection) -> bool:
    """Statement or cursor events are listened for on the connection or its root engine.

    An engine with execution options always says it has events (its isolation level is set
    at checkout by one), and asking its joined dispatcher for listeners costs ~20 µs, so the
    root engine's own listeners are what counts: tests listen there to count statements."""
    if conn._has_events:
        return True
    engine = conn.engine
    if not engine._has_events:
        return False
    while isinstance(engine, OptionEngine):
        engine = engine._proxied
    d = engine.dispatch
    return bool(
        d.before_execute or d.after_execute or d.before_cursor_execute or d.after_cursor_execute
    )


class DirectAsyncEngine(AsyncEngine):
    _connection_cls = DirectAsyncConnection

    def execution_options(self, **opt: Any) -> AsyncEngine:
        return DirectAsyncEngine(self.sync_engine.execution_options(**opt))


def direct_engine(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` (asyncpg) with :class:`DirectAsyncConnection` connections."""
    return DirectAsyncEngine(engine.sync_engine)
