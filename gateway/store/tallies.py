"""Counts of rows by a few columns: what the metrics show of payments, notifications and deliveries."""

from __future__ import annotations

from sqlalchemy import Connection, RowMapping, Table, func, select


def count_by(conn: Connection, table: Table, *columns: str) -> list[RowMapping]:
    cols = [table.c[name] for name in columns]
    return list(conn.execute(select(*cols, func.count().label("count")).group_by(*cols).order_by(*cols)).mappings())
