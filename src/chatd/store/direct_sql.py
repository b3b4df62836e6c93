"""Plain statements prepared for the driver without SQLAlchemy's execution machinery.

``Connection.execute`` builds an execution context, runs statement and cursor events, and
wraps the cursor in a result with metadata matched to the cursor's description: tens of µs per
statement, where SQLite answers chatd's lookups in a few and asyncpg in ~80 µs round trip.
:func:`plan` keeps what SQLAlchemy is needed for (compiling through the engine's compiled
cache, the types' bind and result processors) and hands back the SQL and its positional
parameters; each backend's connection (:mod:`chatd.store.sqlite_inline`,
:mod:`chatd.store.pg_direct`) sends them and wraps the rows in a :class:`DirectResult`.

Only plain statements are planned: a select or an insert, update or delete, with one set of
parameters, no execution options, and no Python-side column defaults to compute. The rest
(text, DDL, executemany, an engine that echoes statements, statements watched by execute or
cursor events, as tests add to count statements) returns None and takes SQLAlchemy's path.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection
from sqlalchemy.engine.base import OptionEngine
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.sql import compiler
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.selectable import CompoundSelect, Select

_PLAIN = (Select, CompoundSelect, Insert, Update, Delete)
_NO_ROWS = SimpleResultMetaData([])


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


class Plan(NamedTuple):
    sql: str
    args: list[Any]
    metadata: SimpleResultMetaData | None  # None: the statement returns no rows

    def result(self, rows: Sequence[Any], rowcount: int) -> DirectResult:
        """The result of running the plan: ``rows`` as the driver returned them."""
        if self.metadata is None:
            return DirectResult(_NO_ROWS, (), rowcount)
        return DirectResult(self.metadata, rows, rowcount)


_shapes: weakref.WeakKeyDictionary[SQLCompiler, _Shape | None] = weakref.WeakKeyDictionary()


def plan(conn: Connection, statement: Any, parameters: Any, execution_options: Any) -> Plan | None:
    """``statement`` with ``parameters`` as the driver takes it, or None (see the module)."""
    if (
        execution_options
        or not isinstance(statement, _PLAIN)
        or statement._execution_options
        or not (parameters is None or isinstance(parameters, Mapping))
        or _observed(conn)
        or conn._echo
        or "schema_translate_map" in conn._execution_options
    ):
        return None
    dialect = conn.dialect
    compiled, extracted, collected, _ = statement._compile_w_cache(
        dialect=dialect,
        compiled_cache=conn._execution_options.get("compiled_cache", conn.engine._compiled_cache),
        column_keys=sorted(parameters) if parameters else [],
        for_executemany=False,
        schema_translate_map=None,
        linting=dialect.compiler_linting | compiler.WARN_LINTING,
    )
    assert isinstance(compiled, SQLCompiler)
    shape = _shape(compiled)
    if shape is None:
        return None
    values = compiled.construct_params(
        parameters, escape_names=False, extracted_parameters=extracted, _collected_params=collected
    )
    sql, args = _positional(compiled, shape, values)
    return Plan(sql, args, shape.metadata)


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
