"""Statements as the drivers take them, and the rows they give back.

SQLAlchemy Core builds every statement; this module compiles each one once per dialect
through the public compiler API (``compile``, ``construct_params``,
``construct_expanded_state``, the types' ``bind_processor`` and ``result_processor``) and keeps
the result: the SQL text, the order of its positional parameters, the processor each one goes
through, and the processors of the result columns. The store's connections
(:mod:`chatd.store.postgres`, :mod:`chatd.store.sqlite`) send the SQL and the parameters to
their driver themselves and wrap what comes back in a :class:`Result`.

Plans are cached per statement object (and the set of parameter names given with it), so a
statement built once at import and run with bound parameters is compiled once; a statement
built anew on each call is compiled on each call (a few hundred µs), which is fine off the hot
paths (:class:`Planner`). ``IN`` lists given as expanding parameters are rendered per call
from the cached plan; :func:`in_list` binds a whole list as one parameter instead.
"""

from __future__ import annotations

import abc
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from keyword import iskeyword
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import NullType

Processor = Callable[[Any], Any]
StatementObserver = Callable[[str], None]
# Plans kept (see Planner): several times the statements chatd builds once (~150), each plan
# some 16 KB.
MAX_PLANS = 512
# A row as ``{column: value}`` (:meth:`Row.as_dict`).
RowDict = dict[str, Any]
Parameters = Mapping[str, Any]
ParameterSets = Parameters | Sequence[Parameters] | None


class Row(tuple[Any, ...]):
    """One result row: a tuple whose columns are also attributes (``row.id``).

    Each statement's rows share a subclass made by :func:`row_type`, with one property per
    column; :meth:`as_dict` gives the row as a ``{column: value}`` dict.
    """

    __slots__ = ()
    keys: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return dict(zip(self.keys, self, strict=True))

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


def row_type(keys: Sequence[str]) -> type[Row]:
    namespace: dict[str, Any] = {"__slots__": (), "keys": tuple(keys)}
    for index, key in enumerate(keys):
        if key.isidentifier() and not iskeyword(key) and key not in ("keys", "as_dict"):
            namespace[key] = property(itemgetter(index))
    return type("Row", (Row,), namespace)


class NoResultFound(LookupError):
    """``one()`` found no row."""


class MultipleResultsFound(LookupError):
    """``one()`` or ``one_or_none()`` found more than one row."""


class Scalars(list[Any]):
    """The first column of every row."""

    def all(self) -> list[Any]:
        return list(self)

    def first(self) -> Any:
        return self[0] if self else None


class Result:
    """The rows of one statement (all fetched), and how many rows it changed."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: Sequence[Row], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def all(self) -> list[Row]:
        return list(self.rows)

    def first(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def one_or_none(self) -> Row | None:
        if len(self.rows) > 1:
            raise MultipleResultsFound("expected at most one row")
        return self.first()

    def one(self) -> Row:
        row = self.one_or_none()
        if row is None:
            raise NoResultFound("expected one row")
        return row

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> Scalars:
        return Scalars(row[0] for row in self.rows)

    def mappings(self) -> list[dict[str, Any]]:
        return [row.as_dict() for row in self.rows]


class Connection(abc.ABC):
    """A database connection as the store's query functions use it."""

    dialect_name: str  # "sqlite" or "postgresql"
    # (channel, payload) sent by :func:`chatd.store.notify.notify` in this write transaction,
    # on a database without LISTEN/NOTIFY (SQLite): handed to the database's notification
    # sinks once the transaction has committed. None where it does not apply.
    notifications: list[tuple[str, bytes]] | None = None
    # The replica whose write this is (Database.origin), named in the hints it sends so that
    # it can ignore its own. None where it does not apply.
    origin: uuid.UUID | None = None

    @abc.abstractmethod
    async def execute(
        self, statement: sa.Executable, parameters: Parameters | Sequence[Parameters] | None = None
    ) -> Result:
        """Run one statement with its bound parameters; every row is fetched.

        A list of parameter sets runs the statement once for each (no rows come back)."""


@dataclass
class Plan:
    """One statement compiled for one dialect and one set of parameter names."""

    compiled: SQLCompiler
    sql: str
    names: tuple[str, ...]
    binders: tuple[Processor | None, ...]
    # Processors by bind name, for the names an expanding parameter renders per call.
    binders_by_name: dict[str, Processor | None]
    expands: bool
    returns_rows: bool
    # One per result column (None: the column needs none), or None for text statements.
    converters: tuple[Processor | None, ...] | None
    row_types: dict[tuple[str, ...], type[Row]] = field(default_factory=dict)

    def bind(self, parameters: Parameters | None) -> tuple[str, list[Any]]:
        """The SQL and its positional parameters for one run."""
        if self.expands:
            state = self.compiled.construct_expanded_state(parameters)
            by_name = self.binders_by_name
            extra = state.processors
            args = []
            names = state.positiontup or ()
            for name, value in zip(names, state.positional_parameters or (), strict=True):
                process = extra.get(name) or by_name.get(name)
                args.append(value if process is None else process(value))
            return state.statement, args
        values = self.compiled.construct_params(parameters)
        return self.sql, [
            values[name] if process is None else process(values[name])
            for name, process in zip(self.names, self.binders, strict=True)
        ]

    def rows(self, keys: Sequence[str], records: Sequence[Sequence[Any]]) -> list[Row]:
        """``records`` as the driver returned them, converted and wrapped as :class:`Row`."""
        key = tuple(keys)
        cls = self.row_types.get(key)
        if cls is None:
            cls = self.row_types[key] = row_type(key)
        converters = self.converters
        if converters is not None and len(converters) != len(key):
            raise RuntimeError(f"expected {len(converters)} columns, the driver gave {len(key)}")
        if converters is None or not any(converters):
            return [cls(record) for record in records]
        pairs = [(i, c) for i, c in enumerate(converters) if c is not None]
        out = []
        for record in records:
            values = list(record)
            for index, convert in pairs:
                values[index] = convert(values[index])
            out.append(cls(values))
        return out


class Planner:
    """Compiles statements for one dialect, keeps the plans of the ones run again, and tells
    the observers (:meth:`chatd.store.db.Database.observe`) about every statement sent.

    The plans are kept per statement object in a bounded LRU: statements built once at
    import stay in it while they are used; one built per call is compiled on each call and
    soon pushed out. The store's threads and the event loop share it, under a lock.
    """

    def __init__(self, dialect: Dialect, observers: list[StatementObserver]) -> None:
        self.dialect = dialect
        self.observers = observers
        # (id of the statement, parameter names) -> (the statement, kept alive while its id
        # is a key, and its plan)
        self._plans: OrderedDict[tuple[int, frozenset[str]], tuple[ClauseElement, Plan]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def plan(self, statement: sa.Executable, parameters: Parameters | None) -> Plan:
        assert isinstance(statement, ClauseElement)
        key = (id(statement), frozenset(parameters) if parameters else frozenset())
        with self._lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
                return found[1]
        plan = self._compile(statement, key[1])
        with self._lock:
            self._plans[key] = (statement, plan)
            if len(self._plans) > MAX_PLANS:
                self._plans.popitem(last=False)
        return plan

    def __len__(self) -> int:
        return len(self._plans)

    def prepare(
        self, statement: sa.Executable, parameters: Parameters | None
    ) -> tuple[Plan, str, list[Any]]:
        """The plan, SQL and positional parameters of one run (the observers are told)."""
        plan = self.plan(statement, parameters)
        sql, args = plan.bind(parameters)
        for observe in self.observers:
            observe(sql)
        return plan, sql, args

    def prepare_many(
        self, statement: sa.Executable, parameter_sets: Sequence[Parameters]
    ) -> tuple[str, list[list[Any]]]:
        """The SQL and the positional parameters of each set, for an ``executemany``."""
        plan = self.plan(statement, parameter_sets[0])
        bound = [plan.bind(parameters) for parameters in parameter_sets]
        for observe in self.observers:
            observe(bound[0][0])
        return bound[0][0], [args for _, args in bound]

    def _compile(self, statement: ClauseElement, names: frozenset[str]) -> Plan:
        dialect = self.dialect
        compiled = statement.compile(dialect=dialect, column_keys=sorted(names))
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("columns with Python-side defaults are not supported")
        by_name: dict[str, Processor | None] = {}
        for bind in compiled.binds.values():
            impl = bind.type.dialect_impl(dialect)
            by_name[compiled.bind_names[bind]] = impl.bind_processor(dialect)
        order = tuple(compiled.positiontup or ())
        return Plan(
            compiled=compiled,
            sql=compiled.string,
            names=order,
            binders=tuple(by_name.get(name) for name in order),
            binders_by_name=by_name,
            expands=bool(compiled.post_compile_params or compiled.literal_execute_params),
            returns_rows=_returns_rows(statement),
            converters=_converters(statement, compiled, dialect),
        )


def _returns_rows(statement: ClauseElement) -> bool:
    if isinstance(statement, sa.SelectBase | sa.TextClause):
        return True
    if isinstance(statement, sa.UpdateBase):
        return bool(statement.exported_columns)
    return False


def _converters(
    statement: ClauseElement, compiled: SQLCompiler, dialect: Dialect
) -> tuple[Processor | None, ...] | None:
    columns: Sequence[Any]
    if isinstance(statement, sa.SelectBase) and not isinstance(statement, sa.TextualSelect):
        columns = list(statement.selected_columns)
    elif isinstance(statement, sa.UpdateBase):
        columns = list(compiled.effective_returning or ())
    else:
        return None
    return tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)


class _ListParameter(sa.types.TypeDecorator[list[Any]]):
    """A list bound as one parameter: a typed array on PostgreSQL, a JSON array on SQLite."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, item_type: sa.types.TypeEngine[Any]) -> None:
        super().__init__()
        self.item_type = item_type

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item_type))
        return dialect.type_descriptor(sa.Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        values = list(value)
        if dialect.name == "postgresql":
            return values
        process = self.item_type.dialect_impl(dialect).bind_processor(dialect)
        return json.dumps(values if process is None else [process(v) for v in values])


class InList(sa.ColumnElement[Any]):
    """``column IN (the list bound to the parameter name)``, one statement for any length.

    An expanding ``IN`` renders a placeholder per value, so each length is a statement of its
    own (prepared anew on PostgreSQL). This binds the whole list as one parameter instead:
    ``= ANY($1::UUID[])`` on PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite.
    """

    # No boolean type: SQLite would render a boolean-typed clause as ``(...) = 1``.
    type = NullType()
    inherit_cache = False

    def __init__(self, column: sa.ColumnElement[Any], name: str) -> None:
        self.column = column
        self.values = sa.bindparam(name, type_=_ListParameter(column.type))


def in_list(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    """``column`` is one of the values of the list given as parameter ``name``.

    The statement must name ``column``'s table some other way (a selected column, a join,
    ``select_from``): this clause does not add it to the FROM list."""
    return cast(sa.ColumnElement[bool], InList(column, name))


@compiles(InList, "postgresql")
def _in_list_postgresql(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"({column} = ANY({compiler.process(element.values, **kw)}))"


@compiles(InList, "sqlite")
def _in_list_sqlite(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    values = compiler.process(element.values, **kw)
    return f"({column} IN (SELECT value FROM json_each({values})))"
