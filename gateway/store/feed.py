"""The one-stop change feed: an append-only, ordered list read by cursor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, text, update

from gateway.domain.dossier import VN_TZ

from .one_trip import OneTrip
from .tables import feed_items

# Concurrent PostgreSQL transactions commit their ids out of order, so a reader whose cursor were the id would
# move past an id that commits later and never see it. Writers therefore leave the cursor (`position`) empty and
# readers number what has become visible since the last reading, in id order, under a transaction-scoped advisory
# lock (`place`): positions are drawn and made visible by one reader at a time, always after every position seen
# before. Writers used to take that lock until their commit, which queued every filing, booking and payment change
# behind the one before (docs/performance.md, issue 24's eighth round). On SQLite the numbering, one statement,
# is a write and so has the database to itself.
_FEED_LOCK = 0x6665_6564  # "feed"
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
PLACE_AT_MOST = 5000  # items numbered per reading: a reader after a long quiet catches up over a few readings


def add_items(trip: OneTrip, items: list[dict[str, Any]]) -> None:
    """Items (type, code, at, data) into a one-trip write."""
    trip.insert(feed_items, items)


def append(conn: Connection, *, type: str, code: str, at: datetime, data: dict[str, Any]) -> int:
    return conn.execute(
        insert(feed_items).values(type=type, code=code, at=at, data=data).returning(feed_items.c.id)
    ).scalar_one()


def place(conn: Connection, limit: int = PLACE_AT_MOST) -> int:
    """Give the items committed since the last reading their positions, after every position given before; how
    many. Holds the feed's lock until the caller's commit (PostgreSQL), so readers number one at a time."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"k": _FEED_LOCK})
    last = select(func.coalesce(func.max(feed_items.c.position), 0)).scalar_subquery()
    unplaced = (select(feed_items.c.id, func.row_number().over(order_by=feed_items.c.id).label("n"))
                .where(feed_items.c.position.is_(None)).order_by(feed_items.c.id).limit(limit).subquery())
    return conn.execute(update(feed_items).where(feed_items.c.id == unplaced.c.id)
                        .values(position=last + unplaced.c.n)).rowcount


def read(conn: Connection, after: int, limit: int) -> list[RowMapping]:
    """Up to `limit` numbered items after the cursor `after`, in cursor order (`place` numbers the newest)."""
    return list(conn.execute(
        select(feed_items).where(feed_items.c.position > after).order_by(feed_items.c.position).limit(limit)
    ).mappings())


def as_item(row: RowMapping) -> dict[str, Any]:
    """A feed item as callers see it, in the feed and in the webhook push alike."""
    return {"cursor": str(row["position"]), "type": row["type"], "code": row["code"],
            "at": row["at"].astimezone(VN_TZ).isoformat(), "data": row["data"]}


def of_code(conn: Connection, code: str) -> list[RowMapping]:
    return list(conn.execute(select(feed_items).where(feed_items.c.code == code).order_by(feed_items.c.id))
                .mappings())


def replace_data(conn: Connection, item_id: int, data: dict[str, Any]) -> None:
    """The one exception to append-only: data minimisation drops attachment bodies from old items (same cursor,
    same type, the body replaced by where the archive keeps it)."""
    conn.execute(update(feed_items).where(feed_items.c.id == item_id).values(data=data))
