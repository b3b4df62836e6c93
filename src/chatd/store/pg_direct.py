"""PostgreSQL statements run from the calling coroutine, without SQLAlchemy's greenlet hop.

SQLAlchemy's asyncio layer runs each ``execute`` as sync code in a new greenlet, which hops
back to the event loop for every driver call, and builds an execution context, a cursor result
and their events around it. Measured here, a primary-key read that way cost ~190 µs of CPU
where asyncpg alone took ~80 µs, and SQLAlchemy's share was a quarter of chatd's CPU at a
hundred streaming chats. :class:`DirectAsyncConnection` keeps SQLAlchemy for what it is good at,
compiling statements (through the engine's compiled cache) and converting bound and result
values (the types' processors), and sends the compiled SQL through the asyncpg adapter's own
cursor coroutine: the same prepared-statement cache, lazy ``BEGIN`` and error translation.

Only plain statements go this way: a select or an insert, update or delete, with one set of
parameters, no execution options, and no Python-side column defaults to compute. Anything else
(text, DDL, executemany, an engine that echoes statements or has cursor events, as tests
add to count statements) takes
SQLAlchemy's own path. Errors are handed to SQLAlchemy's handler, so callers see the same
``sqlalchemy.exc`` exceptions and a dropped connection is invalidated as before.
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
    """An :class:`AsyncConnection` whose plain statements skip the greenlet (see the module)."""

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
