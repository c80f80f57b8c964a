"""Dossier and processing-step rows: read, insert, lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, func, insert, select, update

from .sql_forms import one_of
from .tables import dossier_events, dossiers


def get(conn: Connection, code: str, *, for_update: bool = False) -> RowMapping | None:
    query = select(dossiers).where(dossiers.c.code == code)
    if for_update and conn.dialect.name != "sqlite":  # SQLite: BEGIN IMMEDIATE already serialises writers
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def insert_dossier(conn: Connection, values: dict[str, Any]) -> int:
    return conn.execute(insert(dossiers).values(**values).returning(dossiers.c.id)).scalar_one()


def lock_many(conn: Connection, codes: list[str]) -> list[RowMapping]:
    """The dossiers with these codes, locked for update in code order (so two batches never deadlock)."""
    if not codes:
        return []
    query = select(dossiers).where(one_of(conn, dossiers.c.code, codes)).order_by(dossiers.c.code)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    return list(conn.execute(query).mappings())


def events_with_ids(conn: Connection, dossier_ids: list[int], event_ids: list[str]) -> list[RowMapping]:
    if not dossier_ids or not event_ids:
        return []
    return list(conn.execute(select(dossier_events).where(
        one_of(conn, dossier_events.c.dossier_id, dossier_ids), one_of(conn, dossier_events.c.event_id, event_ids)
    )).mappings())


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(dossier_events), rows)


_SAVE_PROGRESS = update(dossiers).where(dossiers.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), last_seq=bindparam("b_seq"), due_at=bindparam("b_due"),
    updated_at=bindparam("b_now"))


def save_progress(conn: Connection, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """Write back status, last step number and appointment date of dossiers a batch of steps moved."""
    conn.execute(_SAVE_PROGRESS, [{"b_id": r["id"], "b_status": r["status"], "b_seq": r["last_seq"],
                                   "b_due": r["due_at"], "b_now": now} for r in rows])


def replace_data(conn: Connection, dossier_id: int, data: dict[str, Any], *, now: datetime) -> None:
    """The dossier as filed, rewritten: only data minimisation does this (attachment bodies dropped)."""
    conn.execute(update(dossiers).where(dossiers.c.id == dossier_id).values(data=data, updated_at=now))


def mark_fees_paid_online(conn: Connection, dossier_id: int, *, now: datetime) -> None:
    conn.execute(update(dossiers).where(dossiers.c.id == dossier_id).values(fees_paid_online_at=now, updated_at=now))


def returned_at(conn: Connection, dossier_id: int) -> datetime | None:
    """When the dossier's result was returned (its status-10 step), if it was."""
    return conn.execute(select(func.max(dossier_events.c.at)).where(
        dossier_events.c.dossier_id == dossier_id, dossier_events.c.status == 10)).scalar()


def history(conn: Connection, dossier_id: int) -> list[RowMapping]:
    return list(conn.execute(
        select(dossier_events).where(dossier_events.c.dossier_id == dossier_id).order_by(dossier_events.c.seq)
    ).mappings())


def by_id_number(conn: Connection, id_number: str, limit: int = 100) -> list[RowMapping]:
    return list(conn.execute(
        select(dossiers).where(dossiers.c.id_number == id_number).order_by(dossiers.c.received_at.desc())
        .limit(limit)
    ).mappings())


# The 8-working-hour rule ----------------------------------------------------------------------------

def _breached(now: datetime):  # noqa: ANN202 - a WHERE clause
    return (dossiers.c.status == 1) & dossiers.c.ack_due_at.is_not(None) & (dossiers.c.ack_due_at < now)


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
