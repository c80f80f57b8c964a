"""The webhook pusher's one row: how far the receiver has the feed, and who is pushing now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, RowMapping, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .tables import feed_items, webhook_cursor

ROW = 1


def push_pending() -> ColumnElement[bool]:
    """Whether the pusher has anything to do: no cursor yet, a batch unanswered, or feed items past the cursor or
    not numbered yet (a retry not due yet is the pusher's to see): the sweeper asks before it takes the lease."""
    row = webhook_cursor.c.id == ROW
    return or_(~exists().where(row), exists().where(row, or_(
        webhook_cursor.c.pending_through.is_not(None), exists().where(feed_items.c.position.is_(None)),
        exists().where(feed_items.c.position > webhook_cursor.c.cursor))))


def lease(conn: Connection, *, now: datetime, until: datetime) -> RowMapping | None:
    """Take the pusher's lease if it is free and a retry is due; the row (cursor, attempts) or None."""
    if conn.execute(select(webhook_cursor.c.id).where(webhook_cursor.c.id == ROW)).first() is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(webhook_cursor).values(id=ROW, cursor=0, attempts=0, updated_at=now))
        except IntegrityError:  # another pusher made it first
            pass
    taken = conn.execute(
        update(webhook_cursor)
        .where(webhook_cursor.c.id == ROW,
               or_(webhook_cursor.c.leased_until.is_(None), webhook_cursor.c.leased_until < now),
               or_(webhook_cursor.c.next_attempt_at.is_(None), webhook_cursor.c.next_attempt_at <= now))
        .values(leased_until=until, updated_at=now)).rowcount
    if not taken:
        return None
    return conn.execute(select(webhook_cursor).where(webhook_cursor.c.id == ROW)).mappings().one()


def hold(conn: Connection, *, held_until: datetime, until: datetime, cursor: int, pending_through: int | None,
         attempts: int, now: datetime) -> bool:
    """Record progress mid-push and extend the lease; False if the lease was lost (stop pushing then).

    Called before a batch goes out (its last cursor as `pending_through`, so a pusher that takes over after
    a crash resends exactly that batch under the same id) and after it is taken (the new cursor)."""
    return conn.execute(update(webhook_cursor).where(webhook_cursor.c.id == ROW,
                                                     webhook_cursor.c.leased_until == held_until).values(
        cursor=cursor, pending_through=pending_through, attempts=attempts, leased_until=until,
        updated_at=now)).rowcount == 1


def release(conn: Connection, *, held_until: datetime, cursor: int, pending_through: int | None, attempts: int,
            retry_at: datetime | None, error: str | None, now: datetime) -> bool:
    """Record how far we got and free the lease; False if our lease had run out and another took over."""
    return conn.execute(update(webhook_cursor).where(webhook_cursor.c.id == ROW,
                                                     webhook_cursor.c.leased_until == held_until).values(
        cursor=cursor, pending_through=pending_through, attempts=attempts, next_attempt_at=retry_at,
        last_error=error, leased_until=None, updated_at=now)).rowcount == 1


def get(conn: Connection) -> RowMapping | None:
    return conn.execute(select(webhook_cursor).where(webhook_cursor.c.id == ROW)).mappings().first()
