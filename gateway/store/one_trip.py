"""The rows a request writes to several tables, sent in one statement: one round trip, one plan.

A use case adds its rows table by table (`insert`, `update`), then `run` writes them all:

- On PostgreSQL the whole lot is ONE statement, a WITH of INSERTs and UPDATEs, each fed by a JSON array of
  its rows (`json_populate_record` turns each element into the table's row type, so every value gets its
  column type's own input conversion). The statement's text depends only on which tables and columns are
  written, never on how many rows: it is built once per shape and cached here, in the driver's own form (it
  goes to psycopg as it is), psycopg prepares it after a few uses and the server plans it once per
  connection. Before, a step request sent one statement per table, each rebuilt per batch size by
  SQLAlchemy's insertmanyvalues (60 % of the API's CPU was SQLAlchemy building ~12 statements per request:
  docs/performance.md).
- On SQLite (in the process: no round trip to save, and no INSERT inside WITH) the same plan runs as one
  executemany per table, in the same order.

Two things a single statement cannot see, and how a plan says them:

- `unique`: rows that would repeat an existing unique value are skipped (ON CONFLICT DO NOTHING), and only
  the rows written come back from `returning`.
- `after`: a row may name a row of an earlier part (its `_after` value matched against that part's column
  `match`); it is written only if that row was, and `fill` copies columns of the matched row into it (the id
  a child row needs from a parent inserted in the same statement).

Rows of one part must all have the same keys. Rows go in in the order given (ids follow that order).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

AFTER = "_after"  # the key of a row naming the row of the `after` part it depends on


class Guard(Protocol):
    """Columns whose value depends on what the database holds when the statement runs (a job's readiness)."""

    def pg_columns(self, row: str) -> dict[str, str]:
        """SQL for some columns, in terms of the row alias `row` (each its given value otherwise)."""

    def prepare(self, conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """SQLite: the rows with those columns worked out by reading first (one writer at a time there)."""


@dataclass(eq=False)
class Part:
    table: Table
    rows: list[dict[str, Any]]
    returning: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()  # ON CONFLICT (unique) DO NOTHING
    after: Part | None = None
    match: str = ""  # the column of `after` that a row's `_after` names
    fill: dict[str, str] = field(default_factory=dict)  # column -> column of the matched `after` row
    guard: Guard | None = None
    key: str = ""  # an UPDATE: the column that finds each row (the other keys are the new values)
    returned: list[dict[str, Any]] = field(default_factory=list)  # after run(), by id when returning has one

    def shape(self, position: dict[int, int]) -> tuple[Any, ...]:
        return (self.table.name, tuple(self.rows[0]), self.returning, self.unique,
                position.get(id(self.after)) if self.after is not None else None, self.match,
                tuple(self.fill.items()), type(self.guard).__name__, self.key)


class OneTrip:
    """Writes of one transaction, gathered, then sent at once (see the module's doc)."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def insert(self, table: Table, rows: list[dict[str, Any]], *, returning: Sequence[str] = (),
               unique: Sequence[str] = (), after: Part | None = None, match: str = "",
               fill: dict[str, str] | None = None, guard: Guard | None = None) -> Part:
        part = Part(table, rows, tuple(returning), tuple(unique), after, match, fill or {}, guard)
        self.parts.append(part)
        return part

    def update(self, table: Table, rows: list[dict[str, Any]], *, key: str = "id") -> Part:
        """Set, in each row found by `key`, the columns the row gives."""
        part = Part(table, rows, key=key)
        self.parts.append(part)
        return part

    def run(self, conn: Connection) -> None:
        live: list[Part] = []  # parts with rows, whose `after` part (if any) is written too
        for part in self.parts:
            part.returned = []
            if part.rows and (part.after is None or any(part.after is p for p in live)):
                live.append(part)
        if not live:
            return
        if conn.dialect.name == "postgresql":
            _run_postgresql(conn, live)
        else:
            for part in live:
                _run_one(conn, part)
        for part in live:
            if "id" in part.returning:
                part.returned.sort(key=lambda r: r["id"])


# PostgreSQL: one statement ------------------------------------------------------------------------

_statements: dict[tuple[Any, ...], str] = {}
_statements_lock = threading.Lock()


def _run_postgresql(conn: Connection, parts: list[Part]) -> None:
    position = {id(p): n for n, p in enumerate(parts)}
    shape = tuple(p.shape(position) for p in parts)
    statement = _statements.get(shape)
    if statement is None:
        statement = _driver_form(_statement_sql(parts, position))
        with _statements_lock:
            _statements[shape] = statement
    params = {f"p{n}": rows_json(p.rows) for n, p in enumerate(parts)}
    by_name = {f"p{n}": p for n, p in enumerate(parts)}
    # Straight to the driver: the text is final and its parameters need no conversion by SQLAlchemy, whose
    # compiled-statement path cost about a quarter of this statement's client CPU (docs/performance.md, fifth
    # round). The engine's events still see it (the statement counts of db_metrics.py).
    for name, row in conn.exec_driver_sql(statement, params):
        by_name[name].returned.append(row)


def _driver_form(sql: str) -> str:
    """The statement with psycopg's placeholders (%(name)s) for its :name parameters."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


# Datetimes go through json_value too (naive ones refused); keys are strings, as the rows' column names are.
_ROWS_JSON = orjson.OPT_PASSTHROUGH_DATETIME


def rows_json(rows: list[dict[str, Any]]) -> str:
    """The rows as the JSON array the statement reads. orjson, not json: json.dumps was 7 % of the API's samples at
    210 events/s, these rows being most of what a request writes; about half the CPU (docs/performance.md, sixth
    round)."""
    return orjson.dumps(rows, default=json_value, option=_ROWS_JSON).decode()


def json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()  # bytea's input form
    raise TypeError(f"cannot write {type(value).__name__} through one_trip")


def _statement_sql(parts: list[Part], position: dict[int, int]) -> str:
    ctes = [f"p{n} AS ({_update_sql(p, n) if p.key else _insert_sql(p, n, position)})" for n, p in enumerate(parts)]
    outputs = [f"SELECT 'p{n}', row_to_json(p{n}) FROM p{n}" for n, p in enumerate(parts) if p.returning]
    final = " UNION ALL ".join(outputs) if outputs else "SELECT NULL, NULL WHERE false"
    return "WITH " + ",\n".join(ctes) + "\n" + final


def _insert_sql(part: Part, n: int, position: dict[int, int]) -> str:
    table = part.table.name
    given = [c for c in part.rows[0] if c != AFTER]
    defaults = {c.name: c.default.arg for c in part.table.c  # Python-side scalar defaults SQLAlchemy would add
                if c.name not in given and c.name not in part.fill and c.default is not None
                and c.default.is_scalar and isinstance(c.default.arg, bool | int)}
    guarded = part.guard.pg_columns("r") if part.guard else {}
    columns = [*given, *part.fill, *defaults]
    values = [guarded.get(c) or (f"m.{part.fill[c]}" if c in part.fill else
                                 str(defaults[c]).lower() if c in defaults else f"r.{c}") for c in columns]
    source = (f"json_array_elements(CAST(:p{n} AS json)) WITH ORDINALITY AS e(v, n) "
              f"CROSS JOIN LATERAL json_populate_record(NULL::{table}, e.v) AS r")
    if part.after is not None:
        source += f" JOIN p{position[id(part.after)]} AS m ON CAST(m.{part.match} AS text) = e.v ->> '{AFTER}'"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source} ORDER BY e.n"
    if part.unique:
        sql += f" ON CONFLICT ({', '.join(part.unique)}) DO NOTHING"
    return sql + (f" RETURNING {', '.join(part.returning)}" if part.returning else "")


def _update_sql(part: Part, n: int) -> str:
    table = part.table.name
    sets = ", ".join(f"{c} = r.{c}" for c in part.rows[0] if c != part.key)
    # The keys again as an array: the planner takes a function's rows for 100, and on a table of a few thousand
    # rows would rather hash the whole table than look 100 rows up; `= ANY(array)` makes it use the index. The
    # array is read out of the rows' JSON in the statement, not bound: with an array parameter PostgreSQL judged
    # each call's own plan cheaper than the prepared generic one and planned the statement at every call (a
    # payment's settlement: 0.7 ms of planning each; docs/performance.md, ninth round).
    key_type = part.table.c[part.key].type.compile(dialect=postgresql.dialect())
    keys = f"ARRAY(SELECT CAST(v ->> '{part.key}' AS {key_type}) FROM json_array_elements(CAST(:p{n} AS json)) AS v)"
    return (f"UPDATE {table} AS t SET {sets} FROM json_populate_recordset(NULL::{table}, CAST(:p{n} AS json)) AS r "
            f"WHERE t.{part.key} = ANY({keys}) AND t.{part.key} = r.{part.key}")


# SQLite: a statement per part ---------------------------------------------------------------------

def _run_one(conn: Connection, part: Part) -> None:
    rows = part.rows
    if part.after is not None:
        matched = {str(r[part.match]): r for r in part.after.returned}
        rows = [{**{k: v for k, v in row.items() if k != AFTER},
                 **{c: matched[str(row[AFTER])][m] for c, m in part.fill.items()}}
                for row in rows if str(row[AFTER]) in matched]
    if part.guard is not None:
        rows = part.guard.prepare(conn, rows)
    if not rows:
        return
    if part.key:
        conn.execute(_sqlite_update(part.table, part.key, tuple(rows[0])),
                     [{f"v_{k}": v for k, v in row.items()} for row in rows])
        return
    statement = _sqlite_insert(part.table, part.unique, part.returning)
    if part.returning:
        part.returned = [dict(r) for r in conn.execute(statement, rows).mappings()]
    else:
        conn.execute(statement, rows)


def _cached(build: Callable[..., Any]) -> Callable[..., Any]:
    made: dict[tuple[Any, ...], Any] = {}

    def get(*args: Any) -> Any:
        if (found := made.get(args)) is None:
            found = made[args] = build(*args)
        return found

    return get


@_cached
def _sqlite_insert(table: Table, unique: tuple[str, ...], returning: tuple[str, ...]) -> Any:
    statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=list(unique)) if unique else insert(table)
    return statement.returning(*(table.c[c] for c in returning)) if returning else statement


@_cached
def _sqlite_update(table: Table, key: str, columns: tuple[str, ...]) -> Any:
    return (update(table).where(table.c[key] == bindparam(f"v_{key}"))
            .values({c: bindparam(f"v_{c}") for c in columns if c != key}))
