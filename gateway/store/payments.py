"""Payment rows and their receipts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, bindparam, exists, insert, select, update

from .one_trip import OneTrip, Part
from .sql_forms import fixed, one_of
from .tables import payment_receipts, payments


def insert_payment(conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
    values = {**values}
    values["id"] = conn.execute(insert(payments).values(**values).returning(payments.c.id)).scalar_one()
    return values


def add_payment(trip: OneTrip, values: dict[str, Any]) -> Part:
    """A new payment into a one-trip write; the part returns its id."""
    return trip.insert(payments, [values], returning=("id",))


_BY_REFERENCE = select(payments).where(payments.c.reference == bindparam("reference"))  # written once, as dossiers.get
_BY_REFERENCE_LOCKED = _BY_REFERENCE.with_for_update()


def by_reference(conn: Connection, reference: str, *, for_update: bool = False) -> RowMapping | None:
    locked = for_update and conn.dialect.name != "sqlite"  # SQLite: BEGIN IMMEDIATE already serialises writers
    return conn.execute(_BY_REFERENCE_LOCKED if locked else _BY_REFERENCE, {"reference": reference}).mappings().first()


def by_idempotency_key(conn: Connection, caller: str, key: str) -> RowMapping | None:
    return conn.execute(select(payments).where(payments.c.caller == caller, payments.c.idempotency_key == key)
                        ).mappings().first()


def of_dossier(conn: Connection, dossier_id: int, states: frozenset[str] | None = None) -> list[RowMapping]:
    query = select(payments).where(payments.c.dossier_id == dossier_id)
    if states is not None:
        query = query.where(payments.c.state.in_(sorted(states)))
    return list(conn.execute(query.order_by(payments.c.id)).mappings())


def of_dossiers(conn: Connection, dossier_ids: list[int], states: frozenset[str] | None = None) -> list[RowMapping]:
    if not dossier_ids:
        return []
    query = select(payments).where(one_of(conn, payments.c.dossier_id, dossier_ids))
    if states is not None:
        query = query.where(payments.c.state.in_(sorted(states)))
    return list(conn.execute(query.order_by(payments.c.id)).mappings())


def change(conn: Connection, payment_id: int, *, expected: frozenset[str], now: datetime,
           **values: Any) -> RowMapping | None:
    """Move a payment on, only from one of the `expected` states; the row after, or None if it had moved."""
    return conn.execute(
        update(payments).where(payments.c.id == payment_id, payments.c.state.in_(sorted(expected)))
        .values(updated_at=now, **values).returning(payments)
    ).mappings().first()


def add_change(trip: OneTrip, payment_id: int, values: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Set columns of a payment whose row lock the caller holds, into a one-trip write; the values set."""
    values = {**values, "updated_at": now}
    trip.update(payments, [{"id": payment_id, **values}])
    return values


def note_error(conn: Connection, payment_id: int, error: str, *, now: datetime) -> None:
    conn.execute(update(payments).where(payments.c.id == payment_id).values(last_error=error[:4000],
                                                                            updated_at=now))


def _check_due(now: datetime) -> ColumnElement[bool]:
    return and_(payments.c.state == fixed("pending"), payments.c.next_check_at <= now)  # ix_payments_to_check


def check_pending(now: datetime) -> ColumnElement[bool]:
    """Whether any payment's reconciliation check is due: the sweeper asks before it scans."""
    return exists().where(_check_due(now))


def due_for_check(conn: Connection, *, now: datetime, limit: int) -> list[RowMapping]:
    """Pending payments whose next reconciliation check is due; several workers share them (SKIP LOCKED)."""
    query = select(payments).where(_check_due(now)).order_by(payments.c.next_check_at).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).mappings())


def schedule_checks(conn: Connection, payment_ids: list[int], at: datetime) -> None:
    if payment_ids:
        conn.execute(update(payments).where(payments.c.id.in_(payment_ids)).values(next_check_at=at))


def listing(conn: Connection, *, state: str | None = None, flagged: bool = False,
            limit: int = 200) -> list[RowMapping]:
    query = select(payments)
    if state:
        query = query.where(payments.c.state == state)
    if flagged:
        query = query.where(payments.c.flag.is_not(None))
    return list(conn.execute(query.order_by(payments.c.id.desc()).limit(limit)).mappings())


def has_receipt(conn: Connection, payment_ids: list[int]) -> set[int]:
    if not payment_ids:
        return set()
    return set(conn.execute(select(payment_receipts.c.payment_id)
                            .where(payment_receipts.c.payment_id.in_(payment_ids))).scalars())


def receipt(conn: Connection, payment_id: int) -> bytes | None:
    return conn.execute(select(payment_receipts.c.pdf).where(payment_receipts.c.payment_id == payment_id)
                        ).scalar_one_or_none()


def receipts(conn: Connection, payment_ids: list[int]) -> dict[int, bytes]:
    """The receipts of several payments, by payment id (none fetched yet: not in the answer)."""
    if not payment_ids:
        return {}
    return dict(conn.execute(select(payment_receipts.c.payment_id, payment_receipts.c.pdf).where(
        one_of(conn, payment_receipts.c.payment_id, payment_ids))).tuples().all())


def store_receipt(conn: Connection, payment_id: int, pdf: bytes, *, now: datetime) -> bool:
    """Keep the first receipt fetched; a repeated fetch (a retried job) changes nothing."""
    if receipt(conn, payment_id) is not None:
        return False
    conn.execute(insert(payment_receipts).values(payment_id=payment_id, pdf=pdf, fetched_at=now))
    return True
