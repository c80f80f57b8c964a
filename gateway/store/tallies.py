"""Counts of rows by a few columns: what the metrics show of payments, notifications and deliveries."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, func, select


def count_by(conn: Connection, table: Table, *columns: str, where: ColumnElement[bool] | None = None,
             ) -> list[RowMapping]:
    cols = [table.c[name] for name in columns]
    query = select(*cols, func.count().label("count")).group_by(*cols).order_by(*cols)
    return list(conn.execute(query if where is None else query.where(where)).mappings())
