"""Archive packages' state, audit anchors, and what a dossier's package is made of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.domain.archive import FAILING, PENDING, SEALED

from .one_trip import OneTrip
from .sql_forms import one_of
from .tables import archive_packages, audit_anchors, audit_log

# Not sealed yet: waiting for its build, or failed and waiting to retry (every state but sealed, named so that
# the look-up uses ix_archive_packages_state).
_UNSEALED = (PENDING, FAILING)


def add_pending(trip: OneTrip, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """A package row for each dossier that just reached a final status (a final status has no successor,
    so each dossier gets here once), into a one-trip write."""
    trip.insert(archive_packages, [{"state": PENDING, "attempts": 0, "version": 0, "timestamps": 0, "created_at": now,
                                    "updated_at": now, **row} for row in rows])


def get(conn: Connection, code: str) -> RowMapping | None:
    return conn.execute(select(archive_packages).where(archive_packages.c.dossier_code == code)).mappings().first()


def of_codes(conn: Connection, codes: list[str]) -> dict[str, RowMapping]:
    """The packages of these dossiers, by dossier code (one look-up for a batch)."""
    if not codes:
        return {}
    rows = conn.execute(select(archive_packages).where(archive_packages.c.dossier_code.in_(codes))).mappings()
    return {r["dossier_code"]: r for r in rows}


def of_dossiers(conn: Connection, dossier_ids: list[int]) -> dict[int, RowMapping]:
    rows = conn.execute(select(archive_packages).where(archive_packages.c.dossier_id.in_(dossier_ids))).mappings()
    return {r["dossier_id"]: r for r in rows}


def change(conn: Connection, code: str, *, now: datetime, **values: Any) -> None:
    conn.execute(update(archive_packages).where(archive_packages.c.dossier_code == code)
                 .values(updated_at=now, **values))


def change_unless_sealed(conn: Connection, code: str, *, now: datetime, **values: Any) -> None:
    """A build's failure: a duplicate run of its job (a lease lost on a slow machine) must not mark a package
    that the other run sealed meanwhile as failed."""
    conn.execute(update(archive_packages).where(archive_packages.c.dossier_code == code,
                                                archive_packages.c.state != SEALED).values(updated_at=now, **values))


def change_at_version(conn: Connection, code: str, version: int, *, now: datetime, **values: Any) -> None:
    """A renewal's flag, unless another run of its job renewed the package meanwhile."""
    conn.execute(update(archive_packages).where(archive_packages.c.dossier_code == code,
                                                archive_packages.c.version == version).values(updated_at=now, **values))


def listing(conn: Connection, state: str | None = None, limit: int = 200) -> list[RowMapping]:
    query = select(archive_packages).order_by(archive_packages.c.updated_at.desc()).limit(limit)
    if state:
        query = query.where(archive_packages.c.state == state)
    return list(conn.execute(query).mappings())


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(archive_packages.c.state, func.count()).group_by(archive_packages.c.state))
    return {PENDING: 0, SEALED: 0, FAILING: 0, **{state: n for state, n in rows}}


def oldest_unsealed_final_at(conn: Connection) -> datetime | None:
    """When the longest-waiting finished dossier without a sealed package reached its final status: the sealing
    lag's start (pending and failed packages are few, and state is indexed)."""
    return conn.execute(select(func.min(archive_packages.c.final_at))
                        .where(archive_packages.c.state.in_(_UNSEALED))).scalar_one()


def sealed_seconds(conn: Connection, limit: int = 1000) -> list[float]:
    """Seconds from final status to sealed, of the newest sealed packages."""
    rows = conn.execute(select(archive_packages.c.final_at, archive_packages.c.sealed_at)
                        .where(archive_packages.c.state == SEALED).order_by(archive_packages.c.sealed_at.desc())
                        .limit(limit))
    return [(sealed - final).total_seconds() for final, sealed in rows]


def _renewal_due(before: datetime, weak: list[str], now: datetime) -> ColumnElement[bool]:
    p = archive_packages.c
    return and_(p.state == SEALED, (p.tsa_not_after <= before) | func.lower(p.timestamp_digest).in_(weak),
                p.renew_after.is_(None) | (p.renew_after <= now))


def renewal_pending(*, before: datetime, weak: list[str], now: datetime) -> ColumnElement[bool]:
    """Whether any package is due for renewal (due_for_renewal's condition): the sweeper asks before the scan."""
    return exists().where(_renewal_due(before, weak, now))


def due_for_renewal(conn: Connection, *, before: datetime, weak: list[str], now: datetime,
                    limit: int = 100) -> list[RowMapping]:
    """Sealed packages whose newest timestamp ends before `before` or uses a weak digest, soonest first; not
    those told to wait (renew_after: a renewal that could not help is tried again later)."""
    p = archive_packages.c
    return list(conn.execute(select(archive_packages).where(_renewal_due(before, weak, now))
                             .order_by(p.tsa_not_after, p.id).limit(limit)).mappings())


def _minimising_due(sealed_before: datetime) -> ColumnElement[bool]:
    p = archive_packages.c
    return and_(p.state == SEALED, p.verified_at.is_not(None), p.minimised_at.is_(None),
                p.sealed_at <= sealed_before)


def minimising_pending(*, sealed_before: datetime) -> ColumnElement[bool]:
    """Whether any package is past its grace period with its dossier's bodies still held (due_for_minimising's
    condition, from the start): the sweeper asks before the scan."""
    return exists().where(_minimising_due(sealed_before))


def due_for_minimising(conn: Connection, *, sealed_before: datetime, after_id: int = 0,
                       limit: int = 100) -> list[RowMapping]:
    """Sealed and verified packages past their grace period whose dossier still holds its bodies, in id order
    from `after_id` (a scan walks on from where the last one stopped, so packages that must wait never hold
    back the others)."""
    return list(conn.execute(select(archive_packages).where(
        _minimising_due(sealed_before), archive_packages.c.id > after_id)
        .order_by(archive_packages.c.id).limit(limit)).mappings())


def claim_minimising(conn: Connection, code: str, *, sha256: str, now: datetime) -> bool:
    """Record that the dossier's bodies are dropped now, if they were not already and the package is still the
    sealed, verified file that was checked (two workers at once: one claims it)."""
    done = conn.execute(update(archive_packages).where(
        archive_packages.c.dossier_code == code, archive_packages.c.minimised_at.is_(None),
        archive_packages.c.state == SEALED, archive_packages.c.verified_at.is_not(None),
        archive_packages.c.sha256 == sha256).values(minimised_at=now, updated_at=now))
    return done.rowcount == 1


def unsealed_pending() -> ColumnElement[bool]:
    """Whether any package is not sealed yet (unsealed's condition): the sweeper asks before the retry scan."""
    return exists().where(archive_packages.c.state.in_(_UNSEALED))


def unsealed(conn: Connection, limit: int = 100) -> list[RowMapping]:
    return list(conn.execute(select(archive_packages).where(archive_packages.c.state.in_(_UNSEALED))
                             .order_by(archive_packages.c.id).limit(limit)).mappings())


def audit_records(conn: Connection, codes: list[str]) -> list[RowMapping]:
    """The audit records about several dossiers, in the chain's order."""
    return list(conn.execute(select(audit_log).where(one_of(conn, audit_log.c.subject, codes)).order_by(audit_log.c.id))
                .mappings())


def add_anchor(conn: Connection, values: dict[str, Any]) -> bool:
    """Store an anchor; False when one for that head exists already (another worker anchored it)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(audit_anchors).values(**values))
    except IntegrityError:
        return False
    return True


def last_anchor(conn: Connection) -> RowMapping | None:
    return conn.execute(select(audit_anchors).order_by(audit_anchors.c.seq.desc(), audit_anchors.c.id.desc())
                        .limit(1)).mappings().first()


def last_anchored_at(conn: Connection) -> datetime | None:
    """When the newest anchor was stored (by stored time: a head cut below it is anchored anew)."""
    return conn.execute(select(func.max(audit_anchors.c.created_at))).scalar_one()


def anchors(conn: Connection) -> list[RowMapping]:
    """Every anchor, by position in the chain."""
    return list(conn.execute(select(audit_anchors).order_by(audit_anchors.c.seq, audit_anchors.c.id)).mappings())
