"""Dossier and processing-step rows: read, insert, lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update

from .tables import dossier_events, dossiers


def get(conn: Connection, code: str, *, for_update: bool = False) -> RowMapping | None:
    query = select(dossiers).where(dossiers.c.code == code)
    if for_update and conn.dialect.name != "sqlite":  # SQLite: BEGIN IMMEDIATE already serialises writers
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def insert_dossier(conn: Connection, values: dict[str, Any]) -> int:
    return conn.execute(insert(dossiers).values(**values).returning(dossiers.c.id)).scalar_one()


def set_status(conn: Connection, dossier_id: int, *, status: int, seq: int, now: datetime,
               due_at: datetime | None) -> None:
    values: dict[str, Any] = {"status": status, "last_seq": seq, "updated_at": now}
    if due_at is not None:
        values["due_at"] = due_at
    conn.execute(update(dossiers).where(dossiers.c.id == dossier_id).values(**values))


def find_event(conn: Connection, dossier_id: int, event_id: str) -> RowMapping | None:
    return conn.execute(
        select(dossier_events).where(
            dossier_events.c.dossier_id == dossier_id, dossier_events.c.event_id == event_id
        )
    ).mappings().first()


def insert_event(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(dossier_events).values(**values))


def history(conn: Connection, dossier_id: int) -> list[RowMapping]:
    return list(conn.execute(
        select(dossier_events).where(dossier_events.c.dossier_id == dossier_id).order_by(dossier_events.c.seq)
    ).mappings())


def by_id_number(conn: Connection, id_number: str, limit: int = 100) -> list[RowMapping]:
    return list(conn.execute(
        select(dossiers).where(dossiers.c.id_number == id_number).order_by(dossiers.c.received_at.desc())
        .limit(limit)
    ).mappings())
