"""The one-stop change feed: an append-only, ordered list read by cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, text, update

from gateway.domain.dossier import VN_TZ

from .one_trip import OneTrip
from .tables import feed_items

# Concurrent PostgreSQL transactions could commit ids out of order, and a reader that had moved its
# cursor past a later id would never see the earlier one. Appends therefore take a transaction-scoped
# advisory lock, so ids become visible in order. SQLite has one writer at a time anyway.
_FEED_LOCK = 0x6665_6564  # "feed"


_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def lock(conn: Connection) -> None:
    """Hold the feed until commit (PostgreSQL): before adding items to a one-trip write, in a statement of its own,
    so that the items' ids are drawn under the lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"k": _FEED_LOCK})


def add_items(trip: OneTrip, items: list[dict[str, Any]]) -> None:
    """Items (type, code, at, data) into a one-trip write; the caller holds the lock (`lock`)."""
    trip.insert(feed_items, items)


def append(conn: Connection, *, type: str, code: str, at: datetime, data: dict[str, Any]) -> int:
    lock(conn)
    return conn.execute(
        insert(feed_items).values(type=type, code=code, at=at, data=data).returning(feed_items.c.id)
    ).scalar_one()


def as_item(row: RowMapping) -> dict[str, Any]:
    """A feed item as callers see it, in the feed and in the webhook push alike."""
    return {"cursor": str(row["id"]), "type": row["type"], "code": row["code"],
            "at": row["at"].astimezone(VN_TZ).isoformat(), "data": row["data"]}


def read(conn: Connection, after: int, limit: int) -> list[RowMapping]:
    return list(conn.execute(
        select(feed_items).where(feed_items.c.id > after).order_by(feed_items.c.id).limit(limit)
    ).mappings())


def of_code(conn: Connection, code: str) -> list[RowMapping]:
    return list(conn.execute(select(feed_items).where(feed_items.c.code == code).order_by(feed_items.c.id))
                .mappings())


def replace_data(conn: Connection, item_id: int, data: dict[str, Any]) -> None:
    """The one exception to append-only: data minimisation drops attachment bodies from old items (same cursor,
    same type, the body replaced by where the archive keeps it)."""
    conn.execute(update(feed_items).where(feed_items.c.id == item_id).values(data=data))
