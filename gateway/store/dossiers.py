"""Dossier and processing-step rows: read, insert, lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, bindparam, exists, func, select, text, update

from .one_trip import OneTrip, Part
from .outbox import LOCK_KEYS_SQL
from .sql_forms import fixed, one_of
from .tables import dossier_events, dossiers

# Written once: a select built per call costs SQLAlchemy its construction and cache key, more than the look-up
# (docs/performance.md, "Issue 24, third round").
_BY_CODE = select(dossiers).where(dossiers.c.code == bindparam("code"))
_BY_CODE_LOCKED = _BY_CODE.with_for_update()


def get(conn: Connection, code: str, *, for_update: bool = False) -> RowMapping | None:
    locked = for_update and conn.dialect.name != "sqlite"  # SQLite: BEGIN IMMEDIATE already serialises writers
    return conn.execute(_BY_CODE_LOCKED if locked else _BY_CODE, {"code": code}).mappings().first()


def add_dossier(trip: OneTrip, values: dict[str, Any]) -> Part:
    """A new dossier into a one-trip write; the part returns its id."""
    return trip.insert(dossiers, [values], returning=("id",))


_LOCK_MANY = text("SELECT * FROM dossiers WHERE code = ANY(CAST(:codes AS text[])) ORDER BY code FOR UPDATE"
                  ).columns(*dossiers.c)  # PostgreSQL's, written once: the first statement of every step request


def lock_many(conn: Connection, codes: list[str]) -> list[RowMapping]:
    """The dossiers with these codes, locked for update in code order (so two batches never deadlock)."""
    if not codes:
        return []
    if conn.dialect.name == "postgresql":
        return list(conn.execute(_LOCK_MANY, {"codes": codes}).mappings())
    # SQLite: BEGIN IMMEDIATE already serialises writers
    return list(conn.execute(select(dossiers).where(dossiers.c.code.in_(codes)).order_by(dossiers.c.code)).mappings())


def events_with_ids(conn: Connection, dossier_ids: list[int], event_ids: list[str]) -> list[RowMapping]:
    if not dossier_ids or not event_ids:
        return []
    return list(conn.execute(select(dossier_events).where(
        one_of(conn, dossier_events.c.dossier_id, dossier_ids), one_of(conn, dossier_events.c.event_id, event_ids)
    )).mappings())


# PostgreSQL: the jobs' key locks (outbox.lock_keys) and the steps already recorded under the batch's event ids,
# in one round trip. The look-up may read from before the key locks were granted: what it reads is guarded by
# the dossiers' row locks, taken by the statement before (lock_many).
_LOCK_KEYS_FIND_EVENTS = text(
    f"WITH locked AS MATERIALIZED ({LOCK_KEYS_SQL}) SELECT e.* FROM locked LEFT JOIN dossier_events AS e "
    "ON e.dossier_id = ANY(CAST(:ids AS bigint[])) AND e.event_id = ANY(CAST(:event_ids AS text[]))"
).columns(*dossier_events.c)


def lock_keys_and_find_events(conn: Connection, keys: list[str], dossier_ids: list[int],
                              event_ids: list[str]) -> list[RowMapping]:
    """Take the jobs' key locks (PostgreSQL), and answer the steps of these dossiers with these event ids."""
    if conn.dialect.name != "postgresql":  # one writer at a time: no key locks to take
        return events_with_ids(conn, dossier_ids, event_ids)
    rows = conn.execute(_LOCK_KEYS_FIND_EVENTS, {"keys": sorted(set(keys)), "ids": dossier_ids,
                                                 "event_ids": event_ids}).mappings()
    return [r for r in rows if r["id"] is not None]


def add_events(trip: OneTrip, rows: list[dict[str, Any]]) -> None:
    trip.insert(dossier_events, rows)


def add_progress(trip: OneTrip, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """Status, last step number and appointment date of dossiers a batch of steps moved, into a one-trip write."""
    trip.update(dossiers, [{"id": r["id"], "status": r["status"], "last_seq": r["last_seq"], "due_at": r["due_at"],
                            "updated_at": now} for r in rows])


def replace_data(conn: Connection, dossier_id: int, data: dict[str, Any], *, now: datetime) -> None:
    """The dossier as filed, rewritten: only data minimisation does this (attachment bodies dropped)."""
    conn.execute(update(dossiers).where(dossiers.c.id == dossier_id).values(data=data, updated_at=now))


def add_fees_paid_online(trip: OneTrip, dossier_id: int, *, now: datetime) -> None:
    trip.update(dossiers, [{"id": dossier_id, "fees_paid_online_at": now, "updated_at": now}])


def returned_at(conn: Connection, dossier_id: int) -> datetime | None:
    """When the dossier's result was returned (its status-10 step), if it was."""
    return conn.execute(select(func.max(dossier_events.c.at)).where(
        dossier_events.c.dossier_id == dossier_id, dossier_events.c.status == 10)).scalar()


def history(conn: Connection, dossier_id: int) -> list[RowMapping]:
    return histories(conn, [dossier_id])


def histories(conn: Connection, dossier_ids: list[int]) -> list[RowMapping]:
    """The steps of several dossiers, each dossier's in order."""
    return list(conn.execute(
        select(dossier_events).where(one_of(conn, dossier_events.c.dossier_id, dossier_ids))
        .order_by(dossier_events.c.dossier_id, dossier_events.c.seq)
    ).mappings())


def by_id_number(conn: Connection, id_number: str, limit: int = 100) -> list[RowMapping]:
    return list(conn.execute(
        select(dossiers).where(dossiers.c.id_number == id_number).order_by(dossiers.c.received_at.desc())
        .limit(limit)
    ).mappings())


# The 8-working-hour rule ----------------------------------------------------------------------------

def _breached(now: datetime):  # noqa: ANN202 - a WHERE clause
    return (dossiers.c.status == fixed(1)) & dossiers.c.ack_due_at.is_not(None) & (dossiers.c.ack_due_at < now)


def breach_pending(now: datetime) -> ColumnElement[bool]:
    """Whether a breach waits to be announced (ix_dossiers_ack_due): the sweeper asks before it scans."""
    return exists().where(_breached(now), dossiers.c.sla_breach_announced_at.is_(None))


def sla_breaches(conn: Connection, *, now: datetime, limit: int, after_id: int = 0) -> list[RowMapping]:
    """New dossiers past their acknowledgment deadline, by id (a stable cursor for paging)."""
    return list(conn.execute(select(dossiers).where(_breached(now), dossiers.c.id > after_id)
                             .order_by(dossiers.c.id).limit(limit)).mappings())


def count_sla_breaches(conn: Connection, *, now: datetime) -> int:
    return conn.execute(select(func.count()).select_from(dossiers).where(_breached(now))).scalar_one()


def unannounced_breaches(conn: Connection, *, now: datetime, limit: int) -> list[RowMapping]:
    query = (select(dossiers.c.id, dossiers.c.code, dossiers.c.ack_due_at, dossiers.c.received_at)
             .where(_breached(now), dossiers.c.sla_breach_announced_at.is_(None))
             .order_by(dossiers.c.ack_due_at).limit(limit))
    if conn.dialect.name == "postgresql":  # workers share the scan
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).mappings())


def mark_announced(conn: Connection, ids: list[int], *, now: datetime) -> int:
    if not ids:
        return 0
    return conn.execute(update(dossiers).where(dossiers.c.id.in_(ids), dossiers.c.sla_breach_announced_at.is_(None))
                        .values(sla_breach_announced_at=now)).rowcount
