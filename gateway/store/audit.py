"""Audit records: written in the same transaction as the change they describe, then sealed into a hash
chain by one sealer at a time (domain/audit_chain.py), so writers never wait on each other for the chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, exists, func, insert, select, text, update

from gateway.domain.audit_chain import GENESIS, link
from gateway.store import server_clock

from .one_trip import OneTrip
from .tables import audit_anchors, audit_log

_SEALER_LOCK = 7_201_001  # PostgreSQL advisory lock id: one sealer at a time


def record(conn: Connection, *, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None,
           at: datetime | None = None) -> None:
    conn.execute(insert(audit_log).values(
        at=at or server_clock.now(), actor=actor, action=action, subject=subject, detail=detail or {}
    ))


def record_many(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Several records (actor, action, subject, at, detail) in one statement."""
    if records:
        conn.execute(insert(audit_log), records)


def add_records(trip: OneTrip, records: list[dict[str, Any]]) -> None:
    """Records (actor, action, subject, at, detail) into a one-trip write."""
    trip.insert(audit_log, records)


def unsealed_pending() -> ColumnElement[bool]:
    """Whether any record waits for the sealer (a look at the small unsealed index): the sweeper asks first."""
    return exists().where(audit_log.c.seq.is_(None))


def anchor_pending() -> ColumnElement[bool]:
    """Whether the chain's head is past its newest TSA anchor (services/audit/anchors.py): the sweeper asks
    before it looks closer."""
    anchored = select(func.coalesce(func.max(audit_anchors.c.seq), 0)).scalar_subquery()
    return exists().where(audit_log.c.seq > anchored)


@dataclass(frozen=True)
class Sealed:
    count: int
    head: tuple[int, str] | None  # (seq, hash) of the chain's head after sealing, when it moved


_LOCK_SEALER = text("SELECT pg_advisory_xact_lock(:id)")


def seal(conn: Connection, key: bytes, *, limit: int = 5000) -> Sealed:
    """Chain up to `limit` unsealed records, oldest id first, after the last sealed one."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK_SEALER, {"id": _SEALER_LOCK})
    else:  # SQLite: take the write lock before reading the head, so two sealers cannot both extend it
        conn.execute(update(audit_log).where(audit_log.c.id == -1).values(seq=None))
    last = head(conn)
    seq, prev = (last["seq"], last["hash"]) if last else (0, GENESIS)
    rows = conn.execute(select(audit_log).where(audit_log.c.seq.is_(None)).order_by(audit_log.c.id)
                        .limit(limit)).mappings().all()
    sealed = []
    for row in rows:
        seq += 1
        digest = link(key, prev, row)
        sealed.append({"id": row["id"], "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    if not sealed:
        return Sealed(0, None)
    trip = OneTrip()  # one statement for the batch, not an UPDATE per record
    trip.update(audit_log, sealed)
    trip.run(conn)
    return Sealed(len(sealed), (seq, prev))


def sealed_in_order(conn: Connection, page: int = 5000) -> Iterator[RowMapping]:
    """Every sealed record by seq, a page at a time."""
    after = 0
    while True:
        rows = conn.execute(select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
                            .limit(page)).mappings().all()
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1]["seq"]


def head(conn: Connection) -> RowMapping | None:
    return conn.execute(select(audit_log.c.seq, audit_log.c.hash).where(audit_log.c.seq.is_not(None))
                        .order_by(audit_log.c.seq.desc()).limit(1)).mappings().first()


def calls_since(conn: Connection, since: datetime) -> list[tuple[str, str, int]]:
    """(queue, `job.<outcome>`, jobs) of each outbound call the workers recorded since then."""
    return [(r.subject, r.action, len(r.detail.get("jobs", [])) or 1) for r in conn.execute(
        select(audit_log.c.subject, audit_log.c.action, audit_log.c.detail).where(
            audit_log.c.actor == "worker", audit_log.c.at >= since, audit_log.c.action.like("job.%")))]


def unsealed_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(audit_log).where(audit_log.c.seq.is_(None))).scalar_one()
