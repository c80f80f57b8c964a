"""Public-post deliveries and their tracking history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, bindparam, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .one_trip import OneTrip, Part
from .sql_forms import one_of
from .tables import deliveries, delivery_events


def add_delivery(trip: OneTrip, values: dict[str, Any]) -> Part:
    """A new delivery into a one-trip write; the part returns its id."""
    return trip.insert(deliveries, [values], returning=("id",))


def of_dossier(conn: Connection, dossier_id: int, *, for_update: bool = False) -> RowMapping | None:
    query = select(deliveries).where(deliveries.c.dossier_id == dossier_id)
    return conn.execute(query.with_for_update() if for_update else query).mappings().first()


_BY_REFERENCE = select(deliveries).where(deliveries.c.reference == bindparam("reference"))  # written once
_BY_REFERENCE_LOCKED = _BY_REFERENCE.with_for_update()


def by_reference(conn: Connection, reference: str, *, for_update: bool = False) -> RowMapping | None:
    return conn.execute(_BY_REFERENCE_LOCKED if for_update else _BY_REFERENCE, {"reference": reference}
                        ).mappings().first()


def by_order_number(conn: Connection, order_number: str, *, for_update: bool = False) -> RowMapping | None:
    query = select(deliveries).where(deliveries.c.dossier_code == order_number)
    return conn.execute(query.with_for_update() if for_update else query).mappings().first()


def change(conn: Connection, delivery_id: int, *, now: datetime, **values: Any) -> None:
    conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(updated_at=now, **values))


def add_event(conn: Connection, values: dict[str, Any]) -> bool:
    """Record a tracking update; False if it was recorded already (the same callback sent again after an answer
    it never got, a poll seeing it again): the history holds each update once."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(delivery_events).values(**values).on_conflict_do_nothing(
        index_elements=["delivery_id", "status_code", "at"])
    return conn.execute(statement).rowcount == 1


def add_change(trip: OneTrip, delivery_id: int, values: dict[str, Any], *, now: datetime) -> None:
    """Set columns of a delivery whose row lock the caller holds, into a one-trip write."""
    trip.update(deliveries, [{"id": delivery_id, **values, "updated_at": now}])


def add_events(trip: OneTrip, rows: list[dict[str, Any]]) -> None:
    """Tracking updates into a one-trip write, each kept once (as add_event)."""
    trip.insert(delivery_events, rows, unique=("delivery_id", "status_code", "at"))


def of_dossiers(conn: Connection, dossier_ids: list[int]) -> list[RowMapping]:
    return list(conn.execute(select(deliveries).where(one_of(conn, deliveries.c.dossier_id, dossier_ids))
                             .order_by(deliveries.c.id)).mappings())


def events(conn: Connection, delivery_id: int) -> list[RowMapping]:
    return events_of(conn, [delivery_id])


def events_of(conn: Connection, delivery_ids: list[int]) -> list[RowMapping]:
    """The tracking events of several deliveries, in the order they came."""
    if not delivery_ids:
        return []
    return list(conn.execute(select(delivery_events).where(one_of(conn, delivery_events.c.delivery_id, delivery_ids))
                             .order_by(delivery_events.c.id)).mappings())


def _poll_due(now: datetime) -> ColumnElement[bool]:
    return and_(deliveries.c.next_poll_at.is_not(None), deliveries.c.next_poll_at <= now)  # ix_deliveries_to_poll


def poll_pending(now: datetime) -> ColumnElement[bool]:
    """Whether any open delivery's tracking poll is due: the sweeper asks before it scans."""
    return exists().where(_poll_due(now))


def due_for_poll(conn: Connection, *, now: datetime, limit: int) -> list[RowMapping]:
    query = (select(deliveries.c.id, deliveries.c.reference, deliveries.c.dossier_code)
             .where(_poll_due(now)).order_by(deliveries.c.next_poll_at).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).mappings())


def schedule_polls(conn: Connection, ids: list[int], at: datetime) -> None:
    if ids:
        conn.execute(update(deliveries).where(deliveries.c.id.in_(ids)).values(next_poll_at=at))
